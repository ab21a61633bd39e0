from __future__ import annotations

import json
import logging
from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, log_metadata, step

from ragrouter.bundle import RouterBundle
from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.artifacts import EvaluationReport
from ragrouter.registry.code_version import code_version_tags
from ragrouter.registry.model_registry import register_bundle
from ragrouter.registry.tracking import configure_tracking, flat_params, pipeline_run, tracking_store_identity
from ragrouter.registry.training_curve import log_training_curve
from ragrouter.splits import split_fingerprint
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


# The cached result is a version number in one MLflow store: reusable only against that store.
@step(cache_policy=library_cache_policy(__file__, cache_func=tracking_store_identity))
def register_router(
    bundle: RouterBundle,
    report: EvaluationReport,
    records: RoutingRecords,
    splits: pd.DataFrame,
    model_name: str = "ragrouter",
    experiment: str = "ragrouter-training",
) -> Annotated[str, "model_version"]:
    """Log the bundle as an MLflow pyfunc and register a new version tagged with its metrics,
    the pipeline run and the code (git commit, dirty or not). It logs into the active MLflow
    run where ZenML's experiment tracker started one (pipelines/tracking.py)."""
    context = get_step_context()
    run = context.pipeline_run
    entry = bundle.metadata.get("router_entry", bundle.router.name)  # the name in the routers: block
    own_rows = report.table[report.table["router"] == entry]
    tags = {
        "router": bundle.router.name,
        "router_entry": entry,
        "router_config": json.dumps(bundle.router.config.to_dict()),
        "threshold": bundle.threshold,
        "strong_fraction": bundle.strong_fraction,
        "zenml_run_id": str(run.id),
        "zenml_run_name": run.name,
        **code_version_tags(),
    }
    for row in own_rows.itertuples(index=False):
        tags[f"{row.protocol}.APGR"] = f"{row.APGR:.6f}"
        tags[f"{row.protocol}.CPT50"] = f"{row.CPT50:.6f}"
        tags[f"{row.protocol}.split"] = split_fingerprint(splits, row.protocol, records)
    configure_tracking()
    with pipeline_run(experiment, str(run.id), run.name):
        version = register_bundle(bundle, model_name, tags)
        mlflow.log_params(flat_params(bundle.router.config.to_dict(), "router"))
        log_training_curve(getattr(bundle.router, "history_", []))
    logger.info("registered %s version %s (%s)", model_name, version, bundle.router.name)
    log_metadata({"model_name": model_name, "model_version": version})
    return version
