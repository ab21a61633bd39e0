"""ZenML pipelines; run one with `zenml pipeline run pipelines.<name> -c configs/<config>.yaml`."""

from pipelines.benchmark_pipeline import benchmark_pipeline
from pipelines.training_pipeline import training_pipeline

__all__ = ["benchmark_pipeline", "training_pipeline"]
