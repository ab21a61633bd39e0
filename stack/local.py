"""The default local stack: ZenML repository in the project root, local orchestrator and
artifact store, registered as `ragrouter-local` and activated. Safe to run again.

MLflow tracking and registry are configured by the pipeline steps themselves
(MLFLOW_TRACKING_URI, default: sqlite:///mlruns.db in the project root).
"""

from __future__ import annotations

import logging
from pathlib import Path

from zenml.client import Client
from zenml.enums import StackComponentType

STACK_NAME = "ragrouter-local"
logger = logging.getLogger(__name__)


def ensure_local_stack(root: Path) -> str:
    if not (root / ".zen").exists():
        Client.initialize(root=root)
    client = Client()
    existing = {s.name for s in client.list_stacks(size=1000).items}
    if STACK_NAME not in existing:
        client.create_stack(
            name=STACK_NAME,
            components={
                StackComponentType.ORCHESTRATOR: "default",
                StackComponentType.ARTIFACT_STORE: "default",
            },
        )
    if client.active_stack_model.name != STACK_NAME:
        client.activate_stack(STACK_NAME)
    return STACK_NAME


if __name__ == "__main__":
    name = ensure_local_stack(Path.cwd())
    print(f"ZenML repository {Path.cwd()} with active stack {name}")
