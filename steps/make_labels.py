from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.labels import Labels
from steps.cache_policy import library_cache_policy


@step(cache_policy=library_cache_policy(__file__))
def make_labels(records: RoutingRecords, threshold: float = 0.0) -> Annotated[Labels, "labels"]:
    """Every record's gain and `gain > t` target: what the steps that train and evaluate read."""
    labels = Labels.of(records, threshold)
    log_metadata(
        {
            "label_threshold": threshold,
            "strong_needed_fraction": float(labels.frame["strong_needed"].mean()) if len(labels) else 0.0,
            "mean_gain": float(labels.frame["gain"].mean()) if len(labels) else 0.0,
        }
    )
    return labels
