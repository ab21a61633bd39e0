"""`ragrouter lineage models:/<name>@<alias>` and `ragrouter lineage diff A B`: a registered
router traced back through MLflow (ragrouter/lineage.py) to the ZenML run that made it, read
here: its config, every artifact version with its metadata (the data files' sha256 and record
counts, the validation result), and the promotion decision artifact."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ragrouter.lineage import LineageError, diff_lineage, mlflow_lineage
from ragrouter.registry.tracking import configure_tracking

RECORDS_OUTPUT = ("ingest_data", "routing_records")  # its metadata names the data files
VALIDATION_OUTPUT = ("validate_data", "validation_report")
PROMOTION_STEP = "promote_router"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help="models:/<name>@<alias> or models:/<name>/<version>; `diff A B` compares two")
    parser.add_argument("--json", action="store_true", help="print the lineage as JSON")
    parser.set_defaults(handler=lineage)


def _plain(value: Any) -> Any:
    """A loaded artifact or metadata value as JSON-able data."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return json.loads(json.dumps(value, default=str))


def _run(client: Any, run_id: str, uri: str) -> Any:
    try:
        return client.get_pipeline_run(run_id)
    except KeyError:
        raise LineageError(f"{uri}: its ZenML pipeline run {run_id} is not in this ZenML store ({client.zen_store.url})") from None


def zenml_lineage(uri: str) -> dict[str, Any]:
    """The full lineage of one registered version: the MLflow half, and the ZenML run's config,
    artifact versions, data, validation result and promotion decision artifact."""
    from zenml.client import Client

    lineage = mlflow_lineage(uri)
    client = Client()
    ids = lineage["zenml"]
    run = _run(client, ids["run_id"], uri)
    outputs = {(step, output): version for step, step_run in run.steps.items() for output, versions in step_run.outputs.items() for version in versions}
    lineage["zenml"].update({"run_name": run.name, "pipeline": run.pipeline.name if run.pipeline else None, "status": str(run.status)})
    lineage["config"] = _plain(run.config.parameters or {})
    lineage["artifacts"] = [
        {"step": step, "output": output, "id": str(version.id), "version": str(version.version), "type": version.data_type.attribute,
         "uri": version.uri, "metadata": _plain(dict(version.run_metadata))}
        for (step, output), version in sorted(outputs.items())
    ]
    records = outputs.get(RECORDS_OUTPUT)
    lineage["data"] = _plain(records.run_metadata.get("data_sources", {})) if records else {}
    validation = outputs.get(VALIDATION_OUTPUT)
    if validation:
        report = validation.load()
        lineage["validation"] = {"artifact_id": str(validation.id), "success": report.success, "rows": report.n_rows, "problems": len(report.problems)}
    decided_in = _run(client, ids["promotion_run_id"], uri) if ids.get("promotion_run_id") else run
    promotion = decided_in.steps.get(PROMOTION_STEP)
    lineage["promotion"]["artifacts"] = [
        {"run": decided_in.name, "output": output, "id": str(version.id), "value": _plain(version.load())}
        for output, versions in (promotion.outputs.items() if promotion else [])
        for version in versions
    ]
    return lineage


def _print_lineage(lineage: dict[str, Any]) -> None:
    model, run, zenml = lineage["model"], lineage["mlflow_run"], lineage["zenml"]
    print(f"{model['name']} v{model['version']}  aliases: {', '.join(model['aliases']) or '-'}")
    print(f"\nMLflow run {run['id']} ({run['name']})")
    for key, value in run["metrics"].items():
        print(f"  {key} = {value:.4f}")
    print(f"\nZenML run {zenml['run_name']} ({zenml['run_id']}), pipeline {zenml['pipeline']}, {zenml['status']}")
    print(f"  ZenML model version {zenml['model_version_id']}")
    print("\nData")
    for name, source in lineage["data"].items():
        print(f"  {name} ({source['kind']}, {source['path']}): {source['records']} records")
        for path, digest in source["files"].items():
            print(f"    {digest}  {path}")
    if "validation" in lineage:
        v = lineage["validation"]
        print(f"\nValidation: {'passed' if v['success'] else 'FAILED'} on {v['rows']} rows, {v['problems']} problems (artifact {v['artifact_id']})")
    print("\nArtifacts")
    for artifact in lineage["artifacts"]:
        print(f"  {artifact['step']}.{artifact['output']}  {artifact['type']}  {artifact['id']}")
    print("\nConfig")
    print("  " + json.dumps(lineage["config"], sort_keys=True))
    print("\nPromotion")
    for key, value in lineage["promotion"]["tags"].items():
        print(f"  {key}: {value}")
    for artifact in lineage["promotion"]["artifacts"]:
        print(f"  artifact {artifact['output']} ({artifact['id']}, run {artifact['run']}): {json.dumps(artifact['value'], sort_keys=True)}")
    code = lineage["code"]
    print(f"\nCode: git {code.get('git_commit', 'not recorded')}, dirty: {code.get('git_dirty', 'not recorded')}")


def _print_diff(a: str, b: str, diff: dict[str, list[dict[str, Any]]]) -> None:
    print(f"A = {a}\nB = {b}")
    for section, changes in diff.items():
        print(f"\n{section}: {'same' if not changes else f'{len(changes)} differ'}")
        for change in changes:
            print(f"  {change['key']}: {change['a']!r} -> {change['b']!r}")


def lineage(args: argparse.Namespace) -> int:
    configure_tracking()
    if args.models[0] == "diff":
        if len(args.models) != 3:
            raise LineageError("lineage diff takes two models: ragrouter lineage diff models:/<name>@<alias> models:/<name>/<version>")
        a, b = args.models[1:]
        diff = diff_lineage(zenml_lineage(a), zenml_lineage(b))
        print(json.dumps({"a": a, "b": b, "diff": diff}, indent=2)) if args.json else _print_diff(a, b, diff)
        return 0
    if len(args.models) != 1:
        raise LineageError(f"lineage takes one model (or `diff A B`), not {len(args.models)}")
    found = zenml_lineage(args.models[0])
    print(json.dumps(found, indent=2)) if args.json else _print_lineage(found)
    return 0
