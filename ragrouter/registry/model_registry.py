"""Registering a router bundle in the MLflow model registry, and champion/challenger promotion."""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ragrouter.bundle import RouterBundle
from ragrouter.registry.pyfunc import INPUT_EXAMPLE, SIGNATURE

logger = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def register_bundle(bundle: RouterBundle, model_name: str, tags: dict[str, str]) -> str:
    """Log the bundle as a pyfunc in the active MLflow run and register it; returns the version.

    If anything fails after the version exists, the version is deleted: a half-registered
    model never stays in the registry.
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
    try:
        for key, value in tags.items():
            client.set_model_version_tag(model_name, version, key, str(value))
    except Exception:
        client.delete_model_version(model_name, version)
        raise
    return version


@dataclass
class PromotionDecision:
    alias: str
    reason: str
    candidate_metric: float
    champion_version: str | None
    champion_metric: float | None


def current_champion(model_name: str) -> Any | None:
    try:
        return MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def require_version(model_name: str, version: str) -> None:
    """Fail clearly when `version` is not in this store: a cached registration from a run
    against a store since deleted or replaced names a version this registry never had."""
    try:
        MlflowClient().get_model_version(model_name, version)
    except MlflowException as error:
        raise LookupError(
            f"model {model_name!r} version {version} is not in the MLflow registry at {mlflow.get_tracking_uri()}: "
            "it was registered by an earlier run into a store that has since been deleted or replaced. "
            "Re-run with `steps: {register_router: {enable_cache: false}}` in the run config to register again."
        ) from error


def decide_promotion(
    model_name: str,
    version: str,
    metric_tag: str,
    split_tag: str,
    candidate_metric: float,
    split_fingerprint: str,
    reevaluate_champion: Callable[[Any], float],
) -> PromotionDecision:
    """Champion moves to `version` only if its metric is at least the champion's on the same split.

    When the champion was evaluated on another split, `reevaluate_champion(champion_version)`
    scores the champion's recipe on this run's split, so the comparison is like for like.
    """
    require_version(model_name, version)
    champion = current_champion(model_name)
    if champion is None:
        return PromotionDecision(CHAMPION, "no champion yet", candidate_metric, None, None)
    if champion.tags.get(split_tag) == split_fingerprint and metric_tag in champion.tags:
        champion_metric, how = float(champion.tags[metric_tag]), "recorded"
    else:
        champion_metric, how = reevaluate_champion(champion), "re-evaluated on this split"
    if math.isnan(candidate_metric):
        raise ValueError(f"candidate version {version} has no {metric_tag}: cannot compare")
    if candidate_metric >= champion_metric:
        reason = f"{metric_tag} {candidate_metric:.4f} >= champion v{champion.version} {champion_metric:.4f} ({how})"
        return PromotionDecision(CHAMPION, reason, candidate_metric, str(champion.version), champion_metric)
    reason = f"{metric_tag} {candidate_metric:.4f} < champion v{champion.version} {champion_metric:.4f} ({how})"
    return PromotionDecision(CHALLENGER, reason, candidate_metric, str(champion.version), champion_metric)


def apply_promotion(model_name: str, version: str, decision: PromotionDecision) -> None:
    client = MlflowClient()
    client.set_registered_model_alias(model_name, decision.alias, version)
    client.set_model_version_tag(model_name, version, "promotion", decision.reason)
    logger.info("%s v%s -> @%s: %s", model_name, version, decision.alias, decision.reason)


def load_bundle(model_name: str, version: str) -> RouterBundle:
    """The RouterBundle of a registered version (downloaded from its artifacts)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", dst_path=tmp)
        return RouterBundle.load(Path(local) / "artifacts" / "bundle")
