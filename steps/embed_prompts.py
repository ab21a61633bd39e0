from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.features.embeddings import Embeddings, embed_records, embeddings_from_features
from ragrouter.features.query_features import QueryFeatures
from ragrouter.features.semantic import Encoder
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def embed_prompts(
    records: RoutingRecords, encoder: dict[str, Any], features: QueryFeatures | None = None
) -> Annotated[Embeddings, "prompt_embeddings"]:
    """Sentence embeddings of every prompt; cached per (encoder, records) by ZenML. Taken from
    RAGRouter's `features` when the pipeline passes them (it does when their pooled vectors are
    these embeddings), else computed."""
    model = Encoder(**encoder)
    started = time.perf_counter()
    if features is not None:
        embeddings, source = embeddings_from_features(records, features, model), "query_features"
    else:
        embeddings, source = embed_records(records, model, progress=True), "encoder"
    seconds = time.perf_counter() - started
    logger.info("embedded %d prompts with %s in %.1f s (from the %s)", len(records), model.identity, seconds, source.replace("_", " "))
    log_metadata({"prompts": len(records), "encoder": model.identity, "seconds": round(seconds, 1), "source": source})
    return embeddings
