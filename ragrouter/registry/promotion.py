"""Moving the champion alias: compare-and-set under the promotion lock, with a history to roll
back along.

A decision is made against the champion read at its start (`champion_read`), possibly minutes
before (the champion's recipe is re-scored). Under the lock, the alias moves only if that
champion is still the champion; otherwise the decision is made again against the new one.
The champion history is a registered-model tag (HISTORY_TAG, a JSON list of versions). A
promotion moves the alias first and then appends; a rollback writes the shortened history
first and then moves the alias: a process killed between the two leaves a history that the
next rollback still reads right (docs/promotion.md).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from typing import Callable

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ragrouter.registry.decision import CHALLENGER, CHAMPION, PromotionDecision
from ragrouter.registry.kill_point import kill_point
from ragrouter.registry.model_registry import UnknownVersionError, current_champion, require_version
from ragrouter.registry.promotion_lock import promotion_lock

logger = logging.getLogger(__name__)
HISTORY_TAG = "champion.history"
MAX_DECISIONS = 3  # decisions made again when the champion moves meanwhile, before giving up


def champion_version(model_name: str) -> str | None:
    champion = current_champion(model_name)
    return None if champion is None else str(champion.version)


def champion_history(model_name: str) -> list[str]:
    try:
        tags = MlflowClient().get_registered_model(model_name).tags
    except MlflowException as error:
        raise UnknownVersionError(f"model {model_name!r} is not in the MLflow registry") from error
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def promote_by_gate(model_name: str, version: str, decide: Callable[[str | None], PromotionDecision]) -> PromotionDecision:
    """`decide(champion version or None)` and apply the decision, if the champion it read is
    still the champion once the lock is held; otherwise decide again (MAX_DECISIONS times)."""
    require_version(model_name, version)
    decision = None
    for _ in range(MAX_DECISIONS):
        read = champion_version(model_name)
        if read == version:
            return PromotionDecision(model_name, version, CHAMPION, f"v{version} is already the champion", "gate", read)
        decision = decide(read)
        with promotion_lock(model_name):
            kill_point("decided")
            now = champion_version(model_name)
            if now == read:
                apply_decision(decision)
                return decision
        logger.warning("%s: the champion moved from v%s to v%s while v%s was being decided: deciding again", model_name, read, now, version)
    decision.alias = CHALLENGER
    decision.reason = f"the champion moved {MAX_DECISIONS} times while v{version} was being decided; not promoted ({decision.reason})"
    with promotion_lock(model_name):
        apply_decision(decision)
    return decision


def apply_decision(decision: PromotionDecision) -> None:
    """Record the decision on the version and move its alias (the caller holds the lock)."""
    client = MlflowClient()
    for key, value in decision.tags().items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)
    client.set_registered_model_alias(decision.model_name, decision.alias, decision.version)
    if decision.alias == CHAMPION:
        kill_point("champion-moved")
        history = champion_history(decision.model_name)
        client.set_registered_model_tag(decision.model_name, HISTORY_TAG, json.dumps([*history, decision.version]))
    logger.info("%s v%s -> @%s: %s", decision.model_name, decision.version, decision.alias, decision.reason)


def who() -> str:
    return os.environ.get("USER") or getpass.getuser()


def manual_promote(model_name: str, version: str, reason: str | None = None) -> PromotionDecision:
    """Make `version` the champion by hand, recorded as the gate's decisions are."""
    require_version(model_name, version)
    with promotion_lock(model_name):
        read = champion_version(model_name)
        decision = PromotionDecision(
            model_name, version, CHAMPION, f"manual by {who()}: {reason or f'promoted over v{read}'}", f"manual by {who()}", read
        )
        apply_decision(decision)
    return decision


def rollback(model_name: str, reason: str | None = None) -> PromotionDecision:
    """The champion back to the previous champion of the history; the history loses its last."""
    with promotion_lock(model_name):
        read = champion_version(model_name)
        history = champion_history(model_name)
        while history and history[-1] == read:
            history.pop()
        if read is None or not history:
            raise UnknownVersionError(f"model {model_name!r} has no earlier champion to roll back to (champion: {read or 'none'})")
        previous = history[-1]
        decision = PromotionDecision(
            model_name, previous, CHAMPION, f"manual by {who()}: {reason or f'rolled back from v{read}'}", f"manual by {who()}", read
        )
        client = MlflowClient()
        client.set_registered_model_tag(model_name, HISTORY_TAG, json.dumps(history))
        for key, value in decision.tags().items():
            client.set_model_version_tag(model_name, previous, key, value)
        client.set_registered_model_alias(model_name, CHAMPION, previous)
    logger.info("%s: champion rolled back from v%s to v%s", model_name, read, previous)
    return decision
