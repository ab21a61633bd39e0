from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.features.embeddings import Embeddings, embed_records
from ragrouter.features.semantic import Encoder
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def embed_prompts(records: RoutingRecords, encoder: dict[str, Any]) -> Annotated[Embeddings, "prompt_embeddings"]:
    """Sentence embeddings of every prompt; cached per (encoder, records) by ZenML."""
    model = Encoder(**encoder)
    started = time.perf_counter()
    embeddings = embed_records(records, model, progress=True)
    seconds = time.perf_counter() - started
    logger.info("embedded %d prompts with %s in %.1f s", len(records), model.identity, seconds)
    log_metadata({"prompts": len(records), "encoder": model.identity, "seconds": round(seconds, 1)})
    return embeddings
