"""Run a pipeline from the command line, as `zenml pipeline run` does, with clean errors.

    python run.py training --config configs/training.yaml [--no-cache]

Bad input stops the run with a message naming the file, row and field (exit code 2).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ragrouter.errors import RAGRouterError

PIPELINES = {"training": "training_pipeline", "benchmark": "benchmark_pipeline", "ablation": "ablation_pipeline"}


class _NoTracebackForUserErrors(logging.Filter):
    """ZenML logs a failed step with its traceback; for bad input the message alone says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RAGRouterError):
            record.exc_info = None
            record.exc_text = None
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", choices=sorted(PIPELINES))
    parser.add_argument("--config", "-c", required=True, help="YAML run config (configs/...)")
    parser.add_argument("--no-cache", action="store_true", help="re-run every step")
    args = parser.parse_args(argv)

    import pipelines

    for name in ("zenml.orchestrators.local.local_orchestrator", "zenml.orchestrators.step_launcher"):
        logging.getLogger(name).addFilter(_NoTracebackForUserErrors())

    pipeline = getattr(pipelines, PIPELINES[args.pipeline])
    options = {"config_path": args.config}
    if args.no_cache:
        options["enable_cache"] = False
    try:
        pipeline.with_options(**options)()
    except RAGRouterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
