from __future__ import annotations

import logging
from typing import Annotated

import faiss
from zenml import log_metadata, step

from ragrouter.features.embeddings import Embeddings
from ragrouter.retrieval import build_index as build_faiss_index

logger = logging.getLogger(__name__)


@step
def build_index(embeddings: Embeddings) -> Annotated[faiss.Index, "faiss_index"]:
    """FAISS index over all training queries, in the order of the embeddings."""
    index = build_faiss_index(embeddings.vectors, progress=True)
    logger.info("indexed %d vectors of dimension %d", index.ntotal, index.d)
    log_metadata({"vectors": int(index.ntotal), "dimension": int(index.d)})
    return index
