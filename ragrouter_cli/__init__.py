"""`ragrouter <verb>`: the project's command line, where the library meets ZenML.

    ragrouter run training -c configs/training.yaml [--no-cache]   a pipeline, as `zenml pipeline run` does
    ragrouter config -c configs/training.yaml                      the run config, checked and resolved
    ragrouter compare --datasets mmlu --strategies knn ...         routers compared without ZenML
    ragrouter data [--mode ...]                                    the RouteLLM data into data/routellm
    ragrouter serve --strong-url ... --weak-url ...                the routing gateway (docs/gateway.md)
    ragrouter feedback export --store URL --out feedback.parquet   the gateway's feedback as a training source
    ragrouter schedule create --cron "0 3 * * *" -c CONFIG         retraining on a schedule (list, delete <id>)
    ragrouter promote NAME VERSION [--reason ...]                  a version made champion by hand
    ragrouter rollback NAME [--reason ...]                         the champion back to the previous one
    ragrouter lineage models:/ragrouter@champion [--json]          a registered version's data, run, code, promotion
    ragrouter lineage diff models:/ragrouter/1 models:/ragrouter/2  what differs between two versions

Bad input (a config key, a data row) stops with a message naming the file, key or row
(exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import yaml

from ragrouter.errors import RAGRouterError
from ragrouter_cli import aliases, lineage, schedule, serve
from ragrouter_cli.yaml_file import read_mapping

PIPELINES = {"training": "training_pipeline", "benchmark": "benchmark_pipeline", "ablation": "ablation_pipeline"}


class _NoTracebackForUserErrors(logging.Filter):
    """ZenML logs a failed step with its traceback; for bad input the message alone says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RAGRouterError):
            record.exc_info = None
            record.exc_text = None
        return True


def run_parameters(config_path: str) -> dict[str, Any]:
    """The `parameters:` of a ZenML run config file."""
    return read_mapping(config_path, "run config").get("parameters") or {}


def checked_config(config_path: str) -> Any:
    """The file's run config, parsed and checked (errors name the file and the key)."""
    from ragrouter.config import RunConfig

    parameters = run_parameters(config_path)
    try:
        return RunConfig.from_dict(parameters)
    except RAGRouterError as error:
        raise RAGRouterError(f"{config_path}: {error}") from None


def run(args: argparse.Namespace) -> int:
    checked_config(args.config)  # a typo fails here, before ZenML starts
    import pipelines

    for name in ("zenml.orchestrators.local.local_orchestrator", "zenml.orchestrators.step_launcher"):
        logging.getLogger(name).addFilter(_NoTracebackForUserErrors())
    options: dict[str, Any] = {"config_path": args.config}
    if args.no_cache:
        options["enable_cache"] = False
    getattr(pipelines, PIPELINES[args.pipeline]).with_options(**options)()
    return 0


def show_config(args: argparse.Namespace) -> int:
    print(yaml.safe_dump(checked_config(args.config).to_dict(), sort_keys=False), end="")
    return 0


def export_feedback(args: argparse.Namespace) -> int:
    from ragrouter.serving.feedback import export_feedback, open_feedback_store

    store = open_feedback_store(args.store)
    try:
        count = export_feedback(store, args.out)
    except ValueError as error:
        raise RAGRouterError(f"--out: {error}") from None
    finally:
        store.close()
    print(f"{count} outcomes written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("compare", "data"):  # their own parsers and --help
        from ragrouter import compare
        from ragrouter.data import setup

        return (compare.main if argv[0] == "compare" else setup.main)(argv[1:])
    parser = argparse.ArgumentParser(prog="ragrouter", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    run_parser = verbs.add_parser("run", help="run a pipeline on a run config")
    run_parser.add_argument("pipeline", choices=sorted(PIPELINES))
    run_parser.add_argument("--config", "-c", required=True, help="YAML run config (configs/...)")
    run_parser.add_argument("--no-cache", action="store_true", help="re-run every step")
    run_parser.set_defaults(handler=run)
    config_parser = verbs.add_parser("config", help="print a run config, checked, with every default filled in")
    config_parser.add_argument("--config", "-c", required=True)
    config_parser.set_defaults(handler=show_config)
    verbs.add_parser("compare", help="compare routers without ZenML (ragrouter compare --help)")
    verbs.add_parser("data", help="put the RouteLLM data into data/routellm (ragrouter data --help)")
    serve_parser = verbs.add_parser("serve", help="the OpenAI-compatible routing gateway in front of a strong and a weak model")
    serve.add_arguments(serve_parser)
    serve_parser.set_defaults(handler=serve.serve)
    feedback_parser = verbs.add_parser("feedback", help="the gateway's feedback log")
    feedback_verbs = feedback_parser.add_subparsers(dest="action", required=True)
    export_parser = feedback_verbs.add_parser("export", help="write every outcome of a feedback store to a JSONL or Parquet file")
    export_parser.add_argument("--store", required=True, help="the gateway's feedback.store: a JSONL file or a postgresql:// URL")
    export_parser.add_argument("--out", required=True, help="a .jsonl or .parquet file, read by a `table` source")
    export_parser.set_defaults(handler=export_feedback)
    schedule_parser = verbs.add_parser("schedule", help="retraining on a schedule: ZenML's, or a crontab entry on the local stack")
    schedule.add_arguments(schedule_parser, PIPELINES, checked_config)
    aliases.add_arguments(verbs)
    lineage_parser = verbs.add_parser("lineage", help="a registered version traced through MLflow and ZenML (or `lineage diff A B`)")
    lineage.add_arguments(lineage_parser)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except RAGRouterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
