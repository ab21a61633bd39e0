"""The default local stack: ZenML repository in the project root, local orchestrator and
artifact store, and ZenML's MLflow experiment tracker on the project's MLflow store
(MLFLOW_TRACKING_URI, default sqlite:///mlruns.db, a sqlite path made absolute), registered as
`ragrouter-local` and activated. Safe to run again: a tracker pointing elsewhere (the variable
changed since) is pointed at the store again.

With the tracker in the stack, the steps that log to MLflow run inside the MLflow run it
starts, and the ZenML dashboard links each of them to that run (pipelines/tracking.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from zenml.client import Client
from zenml.enums import StackComponentType

from ragrouter.registry.tracking import absolute_tracking_uri, resolve_tracking_uri

STACK_NAME = "ragrouter-local"
TRACKER_NAME = "ragrouter-mlflow-local"
logger = logging.getLogger(__name__)


def ensure_tracker(client: Client, tracking_uri: str) -> str:
    """The MLflow experiment tracker `TRACKER_NAME` on `tracking_uri`: created, or re-pointed."""
    found = client.list_stack_components(type=StackComponentType.EXPERIMENT_TRACKER, name=TRACKER_NAME).items
    if not found:
        client.create_stack_component(
            name=TRACKER_NAME,
            flavor="mlflow",
            component_type=StackComponentType.EXPERIMENT_TRACKER,
            configuration={"tracking_uri": tracking_uri},
        )
    elif found[0].configuration.get("tracking_uri") != tracking_uri:
        client.update_stack_component(TRACKER_NAME, StackComponentType.EXPERIMENT_TRACKER, configuration={"tracking_uri": tracking_uri})
    return TRACKER_NAME


def register_local_stack(tracking_uri: str | None = None) -> str:
    """`ragrouter-local` (local orchestrator and artifact store, the MLflow tracker on
    `tracking_uri`, default the project's store) in the current ZenML store, activated."""
    client = Client()
    tracker = ensure_tracker(client, absolute_tracking_uri(resolve_tracking_uri(tracking_uri)))
    components = {
        StackComponentType.ORCHESTRATOR: "default",
        StackComponentType.ARTIFACT_STORE: "default",
        StackComponentType.EXPERIMENT_TRACKER: tracker,
    }
    if not client.list_stacks(name=STACK_NAME).items:
        client.create_stack(name=STACK_NAME, components=components)
    elif StackComponentType.EXPERIMENT_TRACKER not in client.get_stack(STACK_NAME).components:
        client.update_stack(STACK_NAME, component_updates={StackComponentType.EXPERIMENT_TRACKER: tracker})
    if client.active_stack_model.name != STACK_NAME:
        client.activate_stack(STACK_NAME)
    return STACK_NAME


def ensure_local_stack(root: Path) -> str:
    """A ZenML repository in `root`, with `ragrouter-local` active."""
    if not (root / ".zen").exists():
        Client.initialize(root=root)
    return register_local_stack()


if __name__ == "__main__":
    name = ensure_local_stack(Path.cwd())
    print(f"ZenML repository {Path.cwd()} with active stack {name} (MLflow: {absolute_tracking_uri(resolve_tracking_uri())})")
