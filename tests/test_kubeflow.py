"""The Kubeflow stack registers without a cluster and compiles the GPU training run's KFP spec.

Each command runs in a ZenML store of its own (the session's store keeps the local stack
active for the other tests); the Kubernetes context is a name no cluster answers to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REGISTER = ["register", "--kube-context", "no-cluster", "--artifacts", "s3://ragrouter-test/zenml", "--registry", "registry.example.com/ragrouter", "--mlflow", "http://mlflow.example.com:5000"]
GPU_STEPS = {"extract_features", "train_router"}


def _in_store(store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        # the Kubeflow stack's tracker names the MLflow server: no local store competes with it
        **{key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"},
        "ZENML_CONFIG_PATH": str(store / "config"),
        "ZENML_REPOSITORY_PATH": str(store / "repository"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """configs/kubeflow_gpu.yaml compiled on a freshly registered Kubeflow stack."""
    store = tmp_path_factory.mktemp("kubeflow-store")
    out = store / "training.kfp.yaml"
    script = (
        "import os, sys\n"
        "from zenml.client import Client\n"
        "from zenml.utils import source_utils\n"
        "source_utils.set_custom_source_root(os.getcwd())  # what `python -m` finds from its module\n"
        "from stack.kubeflow import main\n"
        "Client().create_secret('ragrouter_mlflow', values={'username': 'ragrouter', 'password': 'not-checked'})\n"
        f"assert main({REGISTER!r}) == 0\n"
        f"sys.exit(main(['compile', '-c', 'configs/kubeflow_gpu.yaml', '--out', {str(out)!r}]))\n"
    )
    done = _in_store(store, "-c", script)
    assert done.returncode == 0, done.stderr[-3000:]
    return yaml.safe_load(out.read_text())


def _executors(spec: dict) -> dict[str, dict]:
    """Each step's container, by step name (the task names its component, the component its executor)."""
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    return {
        task["taskInfo"]["name"]: executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]]["container"]
        for task in tasks.values()
    }


def test_every_step_runs_in_the_cuda_image_and_only_the_gpu_steps_request_a_gpu(compiled):
    containers = _executors(compiled)
    assert GPU_STEPS < set(containers) and len(containers) >= 10  # the whole training pipeline
    assert {c["image"] for c in containers.values()} == {"nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"}
    for step, container in containers.items():
        resources = container.get("resources", {})
        if step in GPU_STEPS:
            assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu", step
            assert resources["accelerator"]["resourceCount"] == "1", step
            assert resources["resourceCpuLimit"] == "4.0" and resources["resourceMemoryLimit"] == "16G", step
        else:
            assert "accelerator" not in resources, step
    # the spec carries no store credentials: ZenML adds them only when it submits
    assert all({e["name"] for e in c.get("env", [])} <= {"KFP_RUN_ID"} for c in containers.values())


def test_steps_wait_for_their_inputs(compiled):
    tasks = {task["taskInfo"]["name"]: task for task in compiled["root"]["dag"]["tasks"].values()}
    assert "extract-features" in tasks["train_router"]["dependentTasks"]
    assert "dependentTasks" not in tasks["ingest_data"]


def test_register_without_the_mlflow_secret_and_compile_off_a_kubeflow_stack_fail_clearly(tmp_path):
    registered = _in_store(tmp_path, "-m", "stack.kubeflow", *REGISTER)
    assert registered.returncode == 2
    assert "no ZenML secret 'ragrouter_mlflow'" in registered.stderr and "Traceback" not in registered.stderr
    # nothing half-registered: the local stack is still the active one, so compile refuses it
    compiled = _in_store(tmp_path, "-m", "stack.kubeflow", "compile", "--out", str(tmp_path / "spec.yaml"))
    assert compiled.returncode == 2
    assert "runs on the 'local' orchestrator" in compiled.stderr and "Traceback" not in compiled.stderr
    assert not (tmp_path / "spec.yaml").exists()
