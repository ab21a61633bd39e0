from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.labels import label_frame
from steps.cache_policy import library_cache_policy


@step(cache_policy=library_cache_policy(__file__))
def make_labels(records: RoutingRecords, label_threshold: float = 0.0) -> Annotated[pd.DataFrame, "golden_labels"]:
    """gain and the `gain > t` target of every record, for review and for the label-based routers."""
    labels = label_frame(records, label_threshold)
    log_metadata(
        {
            "label_threshold": label_threshold,
            "strong_needed_fraction": float(labels["strong_needed"].mean()),
            "mean_gain": float(labels["gain"].mean()),
        }
    )
    return labels
