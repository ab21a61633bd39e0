"""The distributed stack: Kubeflow orchestrator, S3-compatible artifact store, a container
registry and image builder, and the team's MLflow server (infra/k8s/mlflow.yaml) as
experiment tracker. Registered by name, idempotently (components that exist are reused).

    python -m stack.kubeflow register --kube-context gpu-cluster --artifacts s3://bucket/zenml \
        --registry registry.example.com/ragrouter --mlflow http://mlflow.ragrouter:5000
    python -m stack.kubeflow compile -c configs/kubeflow_gpu.yaml --out training.kfp.yaml

`compile` writes the training pipeline's KFP spec without a cluster: ZenML compiles the run
config into step configurations (resources, Docker settings), and each step becomes a KFP
container task sized by ZenML's own Kubeflow resource mapping. Its images are the steps'
parent images; on a cluster ZenML builds `<registry>/...` images from them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from zenml.client import Client
from zenml.enums import StackComponentType

STACK_NAME = "ragrouter-kubeflow"
# what a compiled spec names as its snapshot: ZenML creates the real one when it submits
PLACEHOLDER_SNAPSHOT_ID = UUID(int=0)


@dataclass
class KubeflowStackConfig:
    kube_context: str
    artifacts: str  # s3://bucket/prefix (MinIO, Ceph, AWS)
    registry: str  # host[:port]/path
    mlflow_uri: str  # the team's MLflow server
    s3_endpoint: str | None = None  # an S3-compatible store's URL (MinIO); None: AWS


def register_kubeflow_stack(config: KubeflowStackConfig) -> str:
    """Create the stack's components and the stack where missing; returns the stack's name."""
    client = Client()
    s3 = {"path": config.artifacts}
    if config.s3_endpoint:
        s3["client_kwargs"] = {"endpoint_url": config.s3_endpoint}
    components = {
        StackComponentType.ORCHESTRATOR: ("ragrouter-kubeflow", "kubeflow", {"kubernetes_context": config.kube_context, "synchronous": False}),
        StackComponentType.ARTIFACT_STORE: ("ragrouter-s3", "s3", s3),
        StackComponentType.CONTAINER_REGISTRY: ("ragrouter-registry", "default", {"uri": config.registry}),
        StackComponentType.IMAGE_BUILDER: ("ragrouter-image-builder", "local", {}),
        StackComponentType.EXPERIMENT_TRACKER: ("ragrouter-mlflow", "mlflow", {"tracking_uri": config.mlflow_uri}),
    }
    for component_type, (name, flavor, settings) in components.items():
        if not client.list_stack_components(type=component_type, name=name).items:
            client.create_stack_component(name=name, flavor=flavor, component_type=component_type, configuration=settings)
    if not client.list_stacks(name=STACK_NAME).items:
        client.create_stack(name=STACK_NAME, components={kind: name for kind, (name, _, _) in components.items()})
    return STACK_NAME


def compile_kfp_spec(pipeline: Any, config_path: str, out: Path) -> Path:
    """The pipeline's KFP spec (YAML) for `config_path`, written to `out`, nothing submitted."""
    from kfp import dsl
    from kfp.compiler import Compiler
    from zenml.entrypoints.step_entrypoint_configuration import StepEntrypointConfiguration
    from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import (
        KFP_ACCELERATOR_NODE_SELECTOR_CONSTRAINT_LABEL,
        KubeflowOrchestrator,
    )

    configured = pipeline.with_options(config_path=config_path)
    configured._prepare_if_possible()  # the pipeline's steps, wired from the config's parameters
    snapshot, _, _ = configured._compile(config_path=config_path)

    @dsl.pipeline(name=snapshot.pipeline_configuration.name.replace("_", "-"))
    def kfp_pipeline():  # no annotations: kfp reads them as artifact types (this module defers them)
        tasks: dict[str, Any] = {}
        for step_name, step in snapshot.step_configurations.items():
            docker = step.config.docker_settings
            image = docker.parent_image or "zenmldocker/zenml"

            @dsl.container_component
            def component():
                return dsl.ContainerSpec(
                    image=image,
                    command=StepEntrypointConfiguration.get_entrypoint_command(),
                    args=StepEntrypointConfiguration.get_entrypoint_arguments(step_name=step_name, snapshot_id=PLACEHOLDER_SNAPSHOT_ID),
                )

            component.component_spec.name = step_name
            task = component().set_display_name(step_name).set_caching_options(enable_caching=False)
            task.after(*(tasks[upstream] for upstream in step.spec.upstream_steps))
            selectors = step.config.settings.get("orchestrator.kubeflow")
            accelerator = (selectors.model_dump().get("pod_settings") or {}).get("node_selectors", {}).get(KFP_ACCELERATOR_NODE_SELECTOR_CONSTRAINT_LABEL) if selectors else None
            constraint = (KFP_ACCELERATOR_NODE_SELECTOR_CONSTRAINT_LABEL, accelerator) if accelerator else None
            # ZenML's own mapping of ResourceSettings onto a KFP task (it reads no orchestrator state)
            tasks[step_name] = KubeflowOrchestrator._configure_container_resources(None, task, step.config.resource_settings, constraint)

    out.parent.mkdir(parents=True, exist_ok=True)
    Compiler().compile(pipeline_func=kfp_pipeline, package_path=str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.kubeflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="register the stack (idempotent) and activate it")
    register.add_argument("--kube-context", required=True)
    register.add_argument("--artifacts", required=True, help="s3://bucket/prefix")
    register.add_argument("--s3-endpoint", help="an S3-compatible store's URL (MinIO)")
    register.add_argument("--registry", required=True, help="container registry, host[:port]/path")
    register.add_argument("--mlflow", required=True, help="the MLflow server's URL (infra/k8s/mlflow.yaml)")
    compile_parser = actions.add_parser("compile", help="write the training pipeline's KFP spec, submitting nothing")
    compile_parser.add_argument("--config", "-c", default="configs/kubeflow_gpu.yaml")
    compile_parser.add_argument("--out", default="training.kfp.yaml")
    args = parser.parse_args(argv)
    if args.action == "register":
        name = register_kubeflow_stack(KubeflowStackConfig(args.kube_context, args.artifacts, args.registry, args.mlflow, args.s3_endpoint))
        Client().activate_stack(name)
        print(f"stack {name} registered and active")
    else:
        import pipelines

        print(compile_kfp_spec(pipelines.training_pipeline, args.config, Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
