"""Registering a router bundle in the MLflow model registry, and reading it back."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ragrouter.bundle import RouterBundle
from ragrouter.errors import RAGRouterError
from ragrouter.registry.decision import CHAMPION
from ragrouter.registry.kill_point import kill_point
from ragrouter.registry.pyfunc import INPUT_EXAMPLE, SIGNATURE

COMPLETE_TAG = "ragrouter.complete"  # set last: a version without it was never finished
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class UnknownVersionError(RAGRouterError, LookupError):
    """A model or version the registry does not have (or has only half)."""


def register_bundle(bundle: RouterBundle, model_name: str, tags: dict[str, str]) -> str:
    """Log the bundle as a pyfunc in the active MLflow run and register it; returns the version.

    If anything fails after the version exists, the version is deleted: a half-registered
    model never stays in the registry. COMPLETE_TAG is set last; a version a killed process
    left without it is found and deleted by `registry.recovery`.
    """
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = Path(tmp) / "bundle"
        bundle.save(bundle_dir)
        info = mlflow.pyfunc.log_model(
            name="router",
            python_model=str(Path(__file__).with_name("model_code.py")),
            artifacts={"bundle": str(bundle_dir)},
            code_paths=[str(PROJECT_ROOT / "ragrouter")],
            signature=SIGNATURE,
            input_example=INPUT_EXAMPLE,
            registered_model_name=model_name,
        )
    version = str(info.registered_model_version)
    kill_point("registered")
    try:
        for key, value in {**tags, COMPLETE_TAG: "true"}.items():
            client.set_model_version_tag(model_name, version, key, str(value))
    except Exception:
        client.delete_model_version(model_name, version)
        raise
    return version


def current_champion(model_name: str) -> Any | None:
    """The version aliased champion, None if there is none (or no such model)."""
    try:
        return MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def require_version(model_name: str, version: str) -> Any:
    """The version, complete; fails clearly when it is not in this store (a cached registration
    from a run against a store since deleted or replaced names a version this registry never
    had) or was never finished (its registering process was killed)."""
    try:
        found = MlflowClient().get_model_version(model_name, version)
    except MlflowException as error:
        raise UnknownVersionError(
            f"model {model_name!r} version {version} is not in the MLflow registry at {mlflow.get_tracking_uri()}: "
            "it was registered by an earlier run into a store that has since been deleted or replaced. "
            "Re-run with `steps: {register_router: {enable_cache: false}}` in the run config to register again."
        ) from error
    if found.tags.get(COMPLETE_TAG) != "true":
        raise UnknownVersionError(f"model {model_name!r} version {version} was never completely registered (no {COMPLETE_TAG} tag): it cannot be promoted")
    return found


def load_bundle(model_name: str, version: str) -> RouterBundle:
    """The RouterBundle of a registered version (downloaded from its artifacts)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", dst_path=tmp)
        return RouterBundle.load(Path(local) / "artifacts" / "bundle")
