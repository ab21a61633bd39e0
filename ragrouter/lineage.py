"""A registered router's lineage, the MLflow half: the tags that link a version to the ZenML
pipeline run that made it, and reading a version back as one JSON-able record (its MLflow run
and metrics, its promotion, its code, the ZenML ids it names). The ZenML half (the run, its
artifact versions, the decision artifact) is read by ragrouter_cli/lineage.py: this library
does not import ZenML. `diff_lineage` compares two such records.
"""

from __future__ import annotations

import json
import re
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ragrouter.errors import RAGRouterError
from ragrouter.registry.decision import CHALLENGER, CHAMPION
from ragrouter.registry.tracking import PIPELINE_RUN_TAG

RUN_NAME_TAG = "zenml_run_name"
ARTIFACT_TAG_PREFIX = "zenml.artifact."  # + <step>.<output>: the artifact version id
MODEL_VERSION_TAG = "zenml.model_version_id"  # the ZenML Model version the run linked
PROMOTION_RUN_TAG = "zenml.promotion_run_id"  # the run whose promote_router last decided on it
PROMOTION_PREFIX = "promotion"  # `promotion` and every `promotion.*` tag: whatever the gate writes
CODE_PREFIX = "code."
ZENML_STAGE_OF_ALIAS = {CHAMPION: "production", CHALLENGER: "staging"}
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class LineageError(RAGRouterError):
    """A model, version or run the stores do not have, or a version without a ZenML run."""


def link_version_to_run(model_name: str, version: str, run_id: str, artifacts: dict[str, str], model_version_id: str) -> dict[str, Any]:
    """Tag the version with the ZenML run's artifact versions (`step.output` -> id) where this run
    registered it (a later run that reused a cached registration leaves them as they are), and,
    always, with the ZenML Model version and the run that last decided its promotion. Returns
    what the ZenML Model version records back: the MLflow name, version, run, aliases and the
    promotion tags."""
    client = MlflowClient()
    found = client.get_model_version(model_name, version)
    tags = {PROMOTION_RUN_TAG: run_id, MODEL_VERSION_TAG: model_version_id}
    if found.tags.get(PIPELINE_RUN_TAG) == run_id:
        tags.update({f"{ARTIFACT_TAG_PREFIX}{key}": value for key, value in artifacts.items()})
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    aliases = list(client.get_model_version(model_name, version).aliases)
    return {
        "mlflow_model_name": model_name,
        "mlflow_model_version": version,
        "mlflow_run_id": found.run_id,
        "mlflow_aliases": aliases,
        **_promotion_tags(found.tags),
    }


def zenml_stage(aliases: list[str]) -> str | None:
    """The ZenML Model version stage that mirrors the MLflow aliases: production for the
    champion, staging for a challenger, None for neither."""
    for alias in (CHAMPION, CHALLENGER):
        if alias in aliases:
            return ZENML_STAGE_OF_ALIAS[alias]
    return None


def _promotion_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(tags.items()) if k == PROMOTION_PREFIX or k.startswith(f"{PROMOTION_PREFIX}.")}


def resolve_version(uri: str) -> Any:
    """The MLflow model version `models:/<name>@<alias>` or `models:/<name>/<version>` names."""
    match = MODEL_URI.match(uri)
    if not match:
        raise LineageError(f"{uri!r} is not a registered model: write models:/<name>@<alias> or models:/<name>/<version>")
    client, name = MlflowClient(), match["name"]
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise LineageError(f"{uri}: no registered model {name!r} in the MLflow registry at {mlflow.get_registry_uri()}") from None
    try:
        if match["alias"]:
            return client.get_model_version_by_alias(name, match["alias"])
        return client.get_model_version(name, match["version"])
    except MlflowException:
        what = f"alias {match['alias']!r}" if match["alias"] else f"version {match['version']}"
        raise LineageError(f"{uri}: model {name!r} has no {what}") from None


def mlflow_lineage(uri: str) -> dict[str, Any]:
    """The MLflow half of a version's lineage. Fails (LineageError) for a version registered
    without ZenML (no pipeline run tag): it has no run to trace."""
    version = resolve_version(uri)
    tags = dict(version.tags)
    if PIPELINE_RUN_TAG not in tags:
        raise LineageError(
            f"{uri}: {version.name} version {version.version} was registered without ZenML (no {PIPELINE_RUN_TAG} tag): "
            "only versions registered by the training pipeline have a lineage"
        )
    run = MlflowClient().get_run(version.run_id)
    known = {PIPELINE_RUN_TAG, RUN_NAME_TAG, MODEL_VERSION_TAG, PROMOTION_RUN_TAG}
    return {
        "model": {"name": version.name, "version": str(version.version), "aliases": list(version.aliases), "source": version.source},
        "mlflow_run": {
            "id": run.info.run_id,
            "name": run.info.run_name,
            "experiment_id": run.info.experiment_id,
            "metrics": dict(sorted(run.data.metrics.items())),
            "params": dict(sorted(run.data.params.items())),
        },
        "zenml": {
            "run_id": tags[PIPELINE_RUN_TAG],
            "run_name": tags.get(RUN_NAME_TAG),
            "model_version_id": tags.get(MODEL_VERSION_TAG),
            "promotion_run_id": tags.get(PROMOTION_RUN_TAG),
            "artifact_ids": {k[len(ARTIFACT_TAG_PREFIX) :]: v for k, v in sorted(tags.items()) if k.startswith(ARTIFACT_TAG_PREFIX)},
        },
        "promotion": {"tags": _promotion_tags(tags)},
        "code": {k[len(CODE_PREFIX) :]: v for k, v in sorted(tags.items()) if k.startswith(CODE_PREFIX)},
        "tags": {
            k: v
            for k, v in sorted(tags.items())
            if k not in known and not k.startswith((ARTIFACT_TAG_PREFIX, CODE_PREFIX, PROMOTION_PREFIX))
        },
    }


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists and scalars as JSON text, so they compare by value."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, sort_keys=True)}


def _data_view(lineage: dict[str, Any]) -> dict[str, Any]:
    """Per source: its record count and each file's sha256."""
    return {name: {"records": s.get("records"), "files": s.get("files", {})} for name, s in lineage.get("data", {}).items()}


DIFF_SECTIONS = {
    "data": _data_view,
    "config": lambda lineage: lineage.get("config", {}),
    "code": lambda lineage: lineage["code"],
    "metrics": lambda lineage: lineage["mlflow_run"]["metrics"],
}


def diff_lineage(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What differs between two lineages, per section (data, config, code, metrics): one
    {key, a, b} per dotted key whose values differ (None where one side lacks it)."""
    diff: dict[str, list[dict[str, Any]]] = {}
    for section, view in DIFF_SECTIONS.items():
        left, right = _flat(view(a)), _flat(view(b))
        diff[section] = [
            {"key": key, "a": left.get(key), "b": right.get(key)} for key in sorted(left.keys() | right.keys()) if left.get(key) != right.get(key)
        ]
    return diff
