"""MLflow tracking: one MLflow run per pipeline run, found again by the pipeline run's id (or
the one ZenML's MLflow experiment tracker started for the step)."""

from __future__ import annotations

import os
import re
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

SQLITE_PREFIX = "sqlite:///"
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
PIPELINE_RUN_TAG = "zenml_run_id"
OWNER_TAG = "ragrouter.owner"  # host:pid of the process that last wrote into the run
DEFAULT_EXPERIMENT_ID = "0"  # every MLflow store creates it with itself


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else a sqlite store in the working directory."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _sqlite_database(uri: str) -> Path | None:
    """The database file of a sqlite store, made absolute; None for other stores."""
    return Path(uri[len(SQLITE_PREFIX) :]).resolve() if uri.startswith(SQLITE_PREFIX) else None


def absolute_tracking_uri(uri: str) -> str:
    """`uri` with a sqlite store's path made absolute (from the working directory): the same
    store wherever the process that reads it runs from; other URIs unchanged."""
    database = _sqlite_database(uri)
    return f"{SQLITE_PREFIX}{database}" if database else uri


def tracking_store_identity() -> str:
    """Which store this process would write into: its location (a sqlite path made absolute)
    and when it was created (its Default experiment's creation time). In the cache key of steps
    whose results live in that store (a registered version, logged metrics): such a result is
    reusable only against the same store, not one beside it (another clone's mlruns.db) nor a
    new one where it used to be (a fresh checkout at the same path, a deleted mlruns.db)."""
    location = absolute_tracking_uri(resolve_tracking_uri())
    try:
        created = MlflowClient(tracking_uri=location).get_experiment(DEFAULT_EXPERIMENT_ID).creation_time
    except MlflowException as error:  # unreachable: the step runs, and says why it cannot register
        created = f"unreachable ({error.error_code})"
    return f"{location} created {created}"


def use_experiment(name: str) -> str:
    """The id of experiment `name`, made active; created if missing. A sqlite store's new
    experiments keep their artifacts in `mlruns/<name>` beside the database file, not in the
    working directory's `mlruns/` (MLflow's default): a store in a temporary folder keeps its
    models there too. Other stores (a tracking server) place artifacts as they are set up to."""
    if mlflow.get_experiment_by_name(name) is None:
        database = _sqlite_database(mlflow.get_tracking_uri())
        location = (database.parent / "mlruns" / re.sub(r"[^\w.-]+", "-", name)).as_uri() if database else None
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except MlflowException:
            if mlflow.get_experiment_by_name(name) is None:  # not another process creating it first
                raise
    return mlflow.set_experiment(name).experiment_id


def configure_tracking(tracking_uri: str | None = None) -> str:
    """Point MLflow's tracking and registry at `resolve_tracking_uri(tracking_uri)`."""
    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def process_owner() -> str:
    """This process as the owner of an MLflow run: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def pipeline_run(experiment: str, pipeline_run_id: str, run_name: str) -> Iterator[mlflow.ActiveRun]:
    """The MLflow run of this pipeline run: created by the first step that logs, resumed after.
    It names its owner process (OWNER_TAG), so a run left RUNNING by a killed process can be
    told from one still in progress (registry.recovery).

    A run already active (ZenML's MLflow experiment tracker starts one per pipeline run before
    each step of it, and ends it after) is used as it is, tagged with the pipeline run's id.
    """
    if (active := mlflow.active_run()) is not None:
        mlflow.set_tags({PIPELINE_RUN_TAG: pipeline_run_id, OWNER_TAG: process_owner()})
        yield active
        return
    experiment_id = use_experiment(experiment)
    found = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.{PIPELINE_RUN_TAG} = '{pipeline_run_id}'", output_format="list"
    )
    if found:
        with mlflow.start_run(run_id=found[0].info.run_id) as run:
            mlflow.set_tag(OWNER_TAG, process_owner())
            yield run
    else:
        with mlflow.start_run(run_name=run_name, tags={PIPELINE_RUN_TAG: pipeline_run_id, OWNER_TAG: process_owner()}) as run:
            yield run


def flat_params(config: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Nested settings as MLflow params: `router.network.fusion`, `router.encoder.max_tokens`."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{prefix}.{key}"))
        else:
            flat[f"{prefix}.{key}"] = value
    return flat
