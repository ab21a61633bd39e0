"""The distributed stack: Kubeflow orchestrator, S3-compatible artifact store, a container
registry and image builder, and the team's MLflow server (infra/k8s/mlflow.yaml) as
experiment tracker. Registered by name, idempotently (components that exist are reused).

    zenml secret create ragrouter_mlflow -i        # username, password of the MLflow server
    python -m stack.kubeflow register --kube-context gpu-cluster --artifacts s3://bucket/zenml \
        --registry registry.example.com/ragrouter --mlflow http://mlflow.ragrouter:5000
    python -m stack.kubeflow compile -c configs/kubeflow_gpu.yaml --out training.kfp.yaml

`compile` writes the training pipeline's KFP spec without a cluster, on the active Kubeflow
stack: ZenML's Kubeflow orchestrator compiles it as it would for a submission (one container
task per step with its CPU, memory and GPU limits), and stops before uploading. Its images are the
steps' parent images; on a cluster ZenML builds `<registry>/zenml:...` images from them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from zenml.client import Client
from zenml.enums import StackComponentType

from stack.kubeflow_orchestrator import FLAVOR, ResourceMappedKubeflowOrchestrator, ResourceMappedKubeflowOrchestratorFlavor

STACK_NAME = "ragrouter-kubeflow"
# what a compiled spec names as its snapshot: ZenML creates the real one when it submits
PLACEHOLDER_SNAPSHOT_ID = UUID(int=0)


class KubeflowStackError(ValueError):
    """What the stack's registration or compile needs and lacks (exit 2, no traceback)."""


@dataclass
class KubeflowStackConfig:
    kube_context: str
    artifacts: str  # s3://bucket/prefix (MinIO, Ceph, AWS)
    registry: str  # host[:port]/path
    mlflow_uri: str  # the team's MLflow server
    s3_endpoint: str | None = None  # an S3-compatible store's URL (MinIO); None: AWS
    # a ZenML secret with `username` and `password` keys: ZenML's MLflow tracker wants one
    # credential for a remote server (a server without auth, infra/k8s/mlflow.yaml, ignores it)
    mlflow_secret: str = "ragrouter_mlflow"


def register_kubeflow_stack(config: KubeflowStackConfig) -> str:
    """Create the stack's components and the stack where missing; returns the stack's name."""
    client = Client()
    try:
        client.get_secret(config.mlflow_secret)
    except KeyError:
        raise KubeflowStackError(
            f"no ZenML secret {config.mlflow_secret!r} for the MLflow server's credentials: "
            f"zenml secret create {config.mlflow_secret} -i (keys username and password)"
        ) from None
    mlflow = {
        "tracking_uri": config.mlflow_uri,
        "tracking_username": f"{{{{{config.mlflow_secret}.username}}}}",
        "tracking_password": f"{{{{{config.mlflow_secret}.password}}}}",
    }
    s3 = {"path": config.artifacts}
    if config.s3_endpoint:
        s3["client_kwargs"] = {"endpoint_url": config.s3_endpoint}
    components = {
        StackComponentType.ORCHESTRATOR: ("ragrouter-kubeflow", FLAVOR, {"kubernetes_context": config.kube_context, "synchronous": False}),
        StackComponentType.ARTIFACT_STORE: ("ragrouter-s3", "s3", s3),
        StackComponentType.CONTAINER_REGISTRY: ("ragrouter-registry", "default", {"uri": config.registry}),
        StackComponentType.IMAGE_BUILDER: ("ragrouter-image-builder", "local", {}),
        StackComponentType.EXPERIMENT_TRACKER: ("ragrouter-mlflow", "mlflow", mlflow),
    }
    if not client.list_flavors(name=FLAVOR, type=StackComponentType.ORCHESTRATOR).items:
        flavor_class = ResourceMappedKubeflowOrchestratorFlavor
        client.create_flavor(source=f"{flavor_class.__module__}.{flavor_class.__name__}", component_type=StackComponentType.ORCHESTRATOR)
    for component_type, (name, flavor, settings) in components.items():
        if not client.list_stack_components(type=component_type, name=name).items:
            client.create_stack_component(name=name, flavor=flavor, component_type=component_type, configuration=settings)
    if not client.list_stacks(name=STACK_NAME).items:
        client.create_stack(name=STACK_NAME, components={kind: name for kind, (name, _, _) in components.items()})
    return STACK_NAME


@dataclass(frozen=True)
class UnsubmittedSnapshot:
    """What ZenML's Kubeflow orchestrator reads of a snapshot to compile it: a compiled run
    config, a placeholder id (ZenML stores the real one when it submits) and, per step, its
    parent image (on a cluster ZenML builds `<registry>/zenml:...` on top of it and names the
    digest instead)."""

    pipeline_configuration: Any
    step_configurations: dict[str, Any]
    build: Any
    id: UUID = PLACEHOLDER_SNAPSHOT_ID


def compile_kfp_spec(pipeline: Any, config_path: str, out: Path) -> Path:
    """The pipeline's KFP spec (YAML) for `config_path`, written to `out`, nothing submitted.

    The active stack must be the Kubeflow stack (its `ragrouter_kubeflow` orchestrator maps
    each step's resources onto its task, and ZenML keeps orchestrator settings only for the
    active flavor). The spec is compiled by that orchestrator's `submit_pipeline`, stopped
    before it uploads: the tasks, limits and accelerators a submission sends.
    """
    from zenml.models import BuildItem, PipelineBuildBase
    from zenml.utils.env_utils import get_runtime_environment
    from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE

    if not Path(config_path).is_file():
        raise KubeflowStackError(f"run config not found: {config_path}")
    stack = Client().active_stack
    if stack.orchestrator.flavor != FLAVOR:
        raise KubeflowStackError(
            f"the active stack {stack.name!r} runs on the {stack.orchestrator.flavor!r} orchestrator: "
            f"register and activate the Kubeflow stack first (python -m stack.kubeflow register ...)"
        )
    configured = pipeline.with_options(config_path=config_path)
    configured._prepare_if_possible()  # the pipeline's steps, wired from the config's parameters
    compiled, _, _ = configured._compile(config_path=config_path)
    images = {
        PipelineBuildBase.get_image_key(component_key=build.key, step=build.step_name): BuildItem(
            image=build.settings.parent_image or DEFAULT_DOCKER_PARENT_IMAGE
        )
        for build in stack.get_docker_builds(snapshot=compiled)
    }
    snapshot = UnsubmittedSnapshot(
        pipeline_configuration=compiled.pipeline_configuration,
        step_configurations=compiled.step_configurations,
        build=PipelineBuildBase(images=images, is_local=False, contains_code=False),
    )
    compiler = SpecOnlyKubeflowOrchestrator.copy_of(stack.orchestrator)
    step_environments = {name: get_runtime_environment(config=step.config, stack=stack) for name, step in compiled.step_configurations.items()}
    # no base environment: ZenML adds the store's URL and credentials there when it submits
    compiler.submit_pipeline(snapshot=snapshot, stack=stack, base_environment={}, step_environments=step_environments)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(compiler.compiled_spec, out)
    return out


class SpecOnlyKubeflowOrchestrator(ResourceMappedKubeflowOrchestrator):
    """The stack's orchestrator, stopped where ZenML would upload the compiled spec and run it."""

    compiled_spec: Path

    @classmethod
    def copy_of(cls, orchestrator: Any) -> SpecOnlyKubeflowOrchestrator:
        return cls(
            name=orchestrator.name,
            id=orchestrator.id,
            config=orchestrator.config,
            flavor=orchestrator.flavor,
            type=orchestrator.type,
            user=orchestrator.user,
            created=orchestrator.created,
            updated=orchestrator.updated,
        )

    def _upload_and_run_pipeline(self, snapshot: Any, pipeline_file_path: str, run_name: str) -> None:
        self.compiled_spec = Path(pipeline_file_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.kubeflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="register the stack (idempotent) and activate it")
    register.add_argument("--kube-context", required=True)
    register.add_argument("--artifacts", required=True, help="s3://bucket/prefix")
    register.add_argument("--s3-endpoint", help="an S3-compatible store's URL (MinIO)")
    register.add_argument("--registry", required=True, help="container registry, host[:port]/path")
    register.add_argument("--mlflow", required=True, help="the MLflow server's URL (infra/k8s/mlflow.yaml)")
    register.add_argument("--mlflow-secret", default="ragrouter_mlflow", help="ZenML secret holding the MLflow server's username and password")
    compile_parser = actions.add_parser("compile", help="write the training pipeline's KFP spec, submitting nothing")
    compile_parser.add_argument("--config", "-c", default="configs/kubeflow_gpu.yaml")
    compile_parser.add_argument("--out", default="training.kfp.yaml")
    args = parser.parse_args(argv)
    try:
        if args.action == "register":
            stack = KubeflowStackConfig(args.kube_context, args.artifacts, args.registry, args.mlflow, args.s3_endpoint, args.mlflow_secret)
            name = register_kubeflow_stack(stack)
            Client().activate_stack(name)
            print(f"stack {name} registered and active")
        else:
            import pipelines

            print(compile_kfp_spec(pipelines.training_pipeline, args.config, Path(args.out)))
    except KubeflowStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
