"""Wall time of the training pipeline: cold (fresh ZenML + MLflow stores) and fully cached.

    python bench/pipeline_time.py [--config configs/training.yaml] [--out bench/results]

Targets on a 2-core CPU (DESIGN.md): cold <= 10 min where the CPU has bfloat16 units, <= 15 min
on AVX2 only; fully cached <= 30 s. The CPU model, whether it has bfloat16 units, each step's
duration and the cached/cold ratio are reported beside the absolute times, all from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/training.yaml")
    parser.add_argument("--out", default="bench/results", help="folder for pipeline_time.json")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ragrouter-bench-"))
    os.environ.update(
        {
            "ZENML_CONFIG_PATH": str(state / "zenml"),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow.db'}",
            "HF_HUB_OFFLINE": "1",
        }
    )
    os.chdir(PROJECT_ROOT)
    sys.path.insert(0, str(PROJECT_ROOT))
    from zenml.client import Client

    from pipelines import training_pipeline
    from ragrouter.precision import native_bfloat16

    times = {}
    for label in ("cold", "cached"):
        started = time.perf_counter()
        training_pipeline.with_options(config_path=args.config)()
        times[label] = time.perf_counter() - started
    runs = Client().list_pipeline_runs(pipeline_name="training_pipeline", sort_by="asc:created", size=2).items
    bfloat16_units = native_bfloat16()
    result = {
        "config": args.config,
        "cpu": cpu_model(),
        "bfloat16_units": bfloat16_units,
        "cold_s": round(times["cold"], 1),
        "cached_s": round(times["cached"], 1),
        "cached_over_cold": round(times["cached"] / times["cold"], 4),
        "cold_steps_s": step_seconds(runs[0]),
        "cached_run_steps": {name: str(step.status) for name, step in runs[-1].steps.items()},
        "targets": {"cold_s": 600 if bfloat16_units else 900, "cached_s": 30},
    }
    out = PROJECT_ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline_time.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def step_seconds(run) -> dict[str, float]:
    """Each step's wall time in a pipeline run."""
    return {
        name: round((step.end_time - step.start_time).total_seconds(), 1)
        for name, step in run.steps.items()
        if step.start_time is not None and step.end_time is not None
    }


if __name__ == "__main__":
    sys.exit(main())
