"""Wall time of the training pipeline: cold (fresh ZenML + MLflow stores) and fully cached.

    python bench/pipeline_time.py [--config configs/training.yaml] [--out bench/results]

Targets on a 2-core CPU (DESIGN.md): cold <= 20 min, cached <= 60 s. The cached/cold ratio is
reported beside the absolute times, both measured in this run.
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

    times = {}
    for label in ("cold", "cached"):
        started = time.perf_counter()
        training_pipeline.with_options(config_path=args.config)()
        times[label] = time.perf_counter() - started
    run = Client().get_pipeline("training_pipeline").last_run
    steps = {name: str(step.status) for name, step in run.steps.items()}
    result = {
        "config": args.config,
        "cold_s": round(times["cold"], 1),
        "cached_s": round(times["cached"], 1),
        "cached_over_cold": round(times["cached"] / times["cold"], 4),
        "cached_run_steps": steps,
        "targets": {"cold_s": 1200, "cached_s": 60},
    }
    out = PROJECT_ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline_time.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
