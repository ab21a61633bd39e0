from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Type

from zenml.enums import ArtifactType, VisualizationType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.bundle import RouterBundle


class RouterBundleMaterializer(LocalDirectoryMaterializer):
    """A trained router with its threshold, in the bundle's own JSON + safetensors layout."""

    ASSOCIATED_TYPES = (RouterBundle,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.MODEL

    def write(self, data: RouterBundle, directory: Path) -> None:
        data.save(directory)

    def read(self, directory: Path, data_type: Type[Any]) -> RouterBundle:
        return RouterBundle.load(directory)

    def save_visualizations(self, data: RouterBundle) -> dict[str, VisualizationType]:
        card = {
            "router": data.router.name,
            "config": data.router.config.to_dict(),
            "threshold": data.threshold,
            "strong_fraction": data.strong_fraction,
            **data.metadata,
        }
        return self.write_visualization("card.json", json.dumps(card, indent=2), VisualizationType.JSON)

    def extract_metadata(self, data: RouterBundle) -> dict[str, Any]:
        return {"router": data.router.name, "threshold": data.threshold, "strong_fraction": data.strong_fraction}
