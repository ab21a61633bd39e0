from __future__ import annotations

import logging
from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step
from zenml.client import Client

from ragrouter.lineage import link_version_to_run, zenml_stage
from ragrouter.registry.tracking import configure_tracking

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def link_model_version(model_version: str, model_name: str) -> Annotated[dict[str, Any], "lineage_links"]:
    """After promotion: the registered MLflow version and this run's ZenML Model version, linked
    both ways. The MLflow version's tags name every artifact version of the run and the ZenML
    Model version; the ZenML Model version carries the MLflow name, version, run, aliases and
    `promotion*` tags as metadata, and its stage mirrors the alias promote_router left
    (champion: production, challenger: staging)."""
    context = get_step_context()
    run = Client().get_pipeline_run(context.pipeline_run.id)
    artifacts = {
        f"{step_name}.{output}": str(version.id)
        for step_name, step_run in run.steps.items()
        for output, versions in step_run.outputs.items()
        for version in versions
    }
    configure_tracking()
    links = link_version_to_run(model_name, model_version, str(run.id), artifacts, str(context.model.id))
    stage = zenml_stage(links["mlflow_aliases"])
    if stage:
        context.model.set_stage(stage, force=True)
    log_metadata(links, infer_model=True)
    logger.info("%s v%s linked to ZenML model version %s (stage %s)", model_name, model_version, context.model.number, stage)
    return {**links, "zenml_model_version": context.model.number, "zenml_stage": stage}
