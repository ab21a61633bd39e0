"""Which MLflow experiment tracker the steps that log to MLflow run under: the active stack's,
where it has one of flavor `mlflow` (stack/local.py adds it), else none and the steps open the
pipeline run's MLflow run themselves (ragrouter/registry/tracking.py). Resolved when the
pipeline is built, so the same pipeline runs on a stack with or without the tracker."""

from __future__ import annotations

import os
from typing import Any

from zenml.client import Client
from zenml.enums import StackComponentType

from ragrouter.errors import RAGRouterError
from ragrouter.registry.tracking import absolute_tracking_uri, configure_tracking, use_experiment


def tracker_options(experiment: str) -> dict[str, Any]:
    """`with_options` for a step that logs to MLflow: the active stack's MLflow tracker, its run
    in `experiment`; {} where the stack has no MLflow tracker.

    A tracker on another store than $MLFLOW_TRACKING_URI (when set) is refused: the steps would
    register into one store and promote in the other. For a local store the experiment is
    created here, so a sqlite store keeps its artifacts beside it (`use_experiment`), not where
    the step runs; a tracking server is not called while the pipeline is only being built.
    """
    trackers = Client().active_stack_model.components.get(StackComponentType.EXPERIMENT_TRACKER) or []
    if not trackers or trackers[0].flavor_name != "mlflow":
        return {}
    tracker = trackers[0]
    uri = tracker.configuration.get("tracking_uri")
    wanted = os.environ.get("MLFLOW_TRACKING_URI")
    if uri and wanted and absolute_tracking_uri(wanted) != uri:
        raise RAGRouterError(
            f"MLFLOW_TRACKING_URI is {wanted}, but the active stack's experiment tracker {tracker.name!r} logs to {uri}: "
            "run `python -m stack.local` (or `make stack`) to point it at the same store, or unset MLFLOW_TRACKING_URI"
        )
    if uri:
        configure_tracking(uri)
        if not uri.startswith(("http://", "https://", "databricks")):  # a server places artifacts itself, and may be unreachable from here (a compile)
            use_experiment(experiment)
    return {"experiment_tracker": tracker.name, "settings": {"experiment_tracker": {"experiment_name": experiment}}}
