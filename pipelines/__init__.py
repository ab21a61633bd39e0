"""ZenML pipelines; run one with `zenml pipeline run pipelines.<name> -c configs/<config>.yaml`."""

from pipelines.training_pipeline import training_pipeline

__all__ = ["training_pipeline"]
