"""ZenML pipelines; run one with `zenml pipeline run pipelines.<name> -c configs/<config>.yaml`."""

from pipelines.ablation_pipeline import ablation_pipeline
from pipelines.benchmark_pipeline import benchmark_pipeline
from pipelines.training_pipeline import training_pipeline

__all__ = ["ablation_pipeline", "benchmark_pipeline", "training_pipeline"]
