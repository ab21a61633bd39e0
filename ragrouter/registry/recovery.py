"""What a killed run leaves in MLflow, found and cleaned by the next one: versions never
completely registered (no `ragrouter.complete` tag) are deleted, and runs left RUNNING are
closed as KILLED. Only when their owner process (the `ragrouter.owner` tag, host:pid) is gone:
a run still in progress on this machine is left alone, and so is one owned by another machine,
which this one cannot check (docs/promotion.md)."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

import mlflow
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from ragrouter.registry.model_registry import COMPLETE_TAG
from ragrouter.registry.tracking import OWNER_TAG

logger = logging.getLogger(__name__)


@dataclass
class Recovered:
    deleted_versions: list[str] = field(default_factory=list)
    killed_runs: list[str] = field(default_factory=list)


def owner_is_gone(owner: str | None) -> bool:
    """True when `owner` (host:pid) is a process of this machine that no longer runs."""
    if not owner or ":" not in owner:
        return False
    host, pid = owner.rsplit(":", 1)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def recover_interrupted(model_name: str, experiment: str) -> Recovered:
    """Delete `model_name`'s unfinished versions and close `experiment`'s orphaned RUNNING runs."""
    client = MlflowClient()
    recovered = Recovered()
    for version in client.search_model_versions(f"name = '{model_name}'"):
        if version.tags.get(COMPLETE_TAG) == "true":
            continue
        try:
            owner = client.get_run(version.run_id).data.tags.get(OWNER_TAG) if version.run_id else None
        except MlflowException:
            owner = None
        if owner_is_gone(owner):
            client.delete_model_version(model_name, version.version)
            recovered.deleted_versions.append(str(version.version))
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        for run in client.search_runs([found.experiment_id], filter_string="attributes.status = 'RUNNING'"):
            if owner_is_gone(run.data.tags.get(OWNER_TAG)):
                client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
                recovered.killed_runs.append(run.info.run_id)
    if recovered.deleted_versions or recovered.killed_runs:
        logger.warning(
            "a killed run left %s unfinished version(s) %s (deleted) and RUNNING MLflow run(s) %s (closed as KILLED)",
            model_name, recovered.deleted_versions, recovered.killed_runs,
        )
    return recovered
