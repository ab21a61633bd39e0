"""ZenML's Kubeflow orchestrator with each step's GPU and memory taken from its ResourceSettings.

ZenML 0.98's own orchestrator cannot request a GPU: it sets one only where the step's
`orchestrator.kubeflow` settings hold an `accelerator` node selector, and no such selector
survives its settings class (`KubeflowOrchestratorSettings`' before-validator rebuilds
`pod_settings` from a legacy `node_selectors` key, which is no field: the compiler drops it as
an unknown attribute, a component config refuses it). It also hands kfp the memory as a float,
which kfp rejects. This flavor (`ragrouter_kubeflow`) replaces only that resource mapping:

    steps: {train_router: {settings: {resources: {gpu_count: 1, cpu_count: 4, memory: 16GB}}}}

gives the task 4 CPUs, 16G of memory and one `nvidia.com/gpu` (the NVIDIA device plugin's
resource; ZenML's own would name the selector's value, e.g. `nvidia-tesla-t4`, which a plain
Kubernetes node does not advertise). Everything else (images, commands, upload, run) is ZenML's.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Type

from zenml.config.resource_settings import ResourceSettings
from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import KubeflowOrchestratorFlavor
from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import KubeflowOrchestrator

FLAVOR = "ragrouter_kubeflow"
GPU_RESOURCE = "nvidia.com/gpu"


def kfp_memory(memory: str) -> str:
    """ZenML's memory ("16GB", "512MiB") as a Kubernetes quantity ("16G", "512Mi")."""
    return memory[:-1] if memory.endswith("B") else memory


class ResourceMappedKubeflowOrchestrator(KubeflowOrchestrator):
    """Kubeflow orchestrator whose tasks carry their step's CPU, memory and GPU limits."""

    def _configure_container_resources(
        self,
        dynamic_component: Any,
        resource_settings: ResourceSettings,
        node_selector_constraint: Optional[Tuple[str, str]] = None,
    ) -> Any:
        task = dynamic_component
        if resource_settings.cpu_count:
            task = task.set_cpu_limit(str(resource_settings.cpu_count))
        if resource_settings.memory:
            task = task.set_memory_limit(kfp_memory(resource_settings.memory))
        if resource_settings.gpu_count:
            task = task.set_accelerator_type(GPU_RESOURCE)
            task = task.set_accelerator_limit(resource_settings.gpu_count)
        return task


class ResourceMappedKubeflowOrchestratorFlavor(KubeflowOrchestratorFlavor):
    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def implementation_class(self) -> Type[ResourceMappedKubeflowOrchestrator]:
        return ResourceMappedKubeflowOrchestrator
