"""`ragrouter schedule create|list|delete`: retraining on a schedule.

On a stack whose orchestrator can schedule (Kubeflow, Kubernetes, Vertex...), `create` makes a
ZenML `Schedule` and the orchestrator runs it. The local orchestrator cannot: there, `create`
installs a crontab entry (ragrouter/crontab.py) that runs the same `ragrouter run` under a lock.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from ragrouter import crontab
from ragrouter.errors import RAGRouterError


def add_arguments(parser: argparse.ArgumentParser, pipelines: dict[str, str], checked_config) -> None:
    """`pipelines`: CLI name -> attribute of the `pipelines` package; `checked_config`: the run-config check of `ragrouter run`."""
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="run a pipeline on a cron schedule")
    create.add_argument("--cron", required=True, help='five fields, e.g. "0 3 * * *" (03:00 daily), or @daily')
    create.add_argument("--config", "-c", default="configs/training.yaml", help="YAML run config (default: %(default)s)")
    create.add_argument("--pipeline", choices=sorted(pipelines), default="training")
    create.add_argument("--id", help="the schedule's name (default: <pipeline>-<random>)")
    create.add_argument("--log-dir", default="logs", help="where a crontab entry appends its runs' output (default: %(default)s)")
    create.set_defaults(handler=lambda args: create_schedule(args, pipelines, checked_config))
    listing = actions.add_parser("list", help="the crontab entries and the active stack's ZenML schedules")
    listing.set_defaults(handler=list_schedules)
    delete = actions.add_parser("delete", help="remove a schedule by its id")
    delete.add_argument("schedule_id")
    delete.set_defaults(handler=delete_schedule)


def create_schedule(args: argparse.Namespace, pipelines: dict[str, str], checked_config) -> int:
    cron = crontab.check_cron(args.cron)
    checked_config(args.config)  # a typo fails now, not at 03:00
    schedule_id = crontab.check_id(args.id or f"{args.pipeline}-{secrets.token_hex(3)}")
    from zenml.client import Client

    orchestrator = Client().active_stack.orchestrator
    if orchestrator.config.is_schedulable:
        import pipelines as pipeline_package
        from zenml.config.schedule import Schedule

        pipeline = getattr(pipeline_package, pipelines[args.pipeline])
        pipeline.with_options(config_path=args.config, schedule=Schedule(name=schedule_id, cron_expression=cron))()
        print(f"ZenML schedule {schedule_id} ({cron}) on orchestrator {orchestrator.name} ({orchestrator.flavor})")
        return 0
    workdir = Path.cwd()
    log_dir = (workdir / args.log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ragrouter_cli", "run", args.pipeline, "--config", str(Path(args.config).resolve())]
    command = crontab.scheduled_command(argv, workdir, log_dir / f"{schedule_id}.log", log_dir / f"{schedule_id}.lock")
    crontab.install_entry(schedule_id, cron, command)
    print(f"crontab entry {schedule_id} ({cron}): orchestrator {orchestrator.name} cannot schedule; output in {log_dir / f'{schedule_id}.log'}")
    return 0


def list_schedules(args: argparse.Namespace) -> int:
    for entry in crontab.list_entries():
        print(f"{entry.schedule_id}\tcrontab\t{entry.cron}\t{entry.command}")
    from zenml.client import Client

    for schedule in Client().list_schedules(size=1000).items:
        print(f"{schedule.name}\tzenml\t{schedule.cron_expression}\t{schedule.id}")
    return 0


def delete_schedule(args: argparse.Namespace) -> int:
    if crontab.delete_entry(args.schedule_id):
        print(f"crontab entry {args.schedule_id} deleted")
        return 0
    from zenml.client import Client

    try:
        Client().delete_schedule(args.schedule_id)
    except KeyError:
        raise RAGRouterError(f"no schedule {args.schedule_id!r} in the crontab or the ZenML store (`ragrouter schedule list`)") from None
    print(f"ZenML schedule {args.schedule_id} deleted")
    return 0
