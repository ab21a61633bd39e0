"""The run's ZenML Model (Model Control Plane): a new version of the ZenML Model named like the
registered MLflow model, to which every artifact of the run is linked. Set while the pipeline
is built, since the name comes from the run config (`registration.model_name`)."""

from __future__ import annotations

from zenml import Model
from zenml.pipelines.compilation_context import PipelineCompilationContext


def attach_model(name: str) -> None:
    """Configure the pipeline being built with `Model(name=name)`; call from its body."""
    context = PipelineCompilationContext.get()
    if context is None:
        raise RuntimeError("attach_model is called from a pipeline's body, while ZenML builds it")
    context.pipeline.configure(model=Model(name=name))
