from __future__ import annotations

import logging
from typing import Annotated

import faiss
from zenml import log_metadata, step

from ragrouter.features.query_features import QueryFeatures
from ragrouter.retrieval import build_index as build_faiss_index
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def build_index(features: QueryFeatures) -> Annotated[faiss.Index, "faiss_index"]:
    """FAISS index over every record's sentence vector, in record order: the retrieval index
    of the router trained on all records."""
    index = build_faiss_index(features.pooled, progress=True)
    logger.info("indexed %d vectors of dimension %d", index.ntotal, index.d)
    log_metadata({"vectors": int(index.ntotal), "dimension": int(index.d), "encoder": features.identity.split("|")[0]})
    return index
