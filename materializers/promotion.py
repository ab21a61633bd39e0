from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Type

from zenml.enums import ArtifactType, VisualizationType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.registry.decision import PromotionDecision


class PromotionDecisionMaterializer(LocalDirectoryMaterializer):
    """A promotion decision as JSON, shown as a markdown table of its comparisons."""

    ASSOCIATED_TYPES = (PromotionDecision,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA_ANALYSIS

    def write(self, data: PromotionDecision, directory: Path) -> None:
        (directory / "decision.json").write_text(json.dumps(data.to_dict(), indent=2))

    def read(self, directory: Path, data_type: Type[Any]) -> PromotionDecision:
        return PromotionDecision.from_dict(json.loads((directory / "decision.json").read_text()))

    def save_visualizations(self, data: PromotionDecision) -> dict[str, VisualizationType]:
        return self.write_visualization("decision.md", data.to_markdown(), VisualizationType.MARKDOWN)

    def extract_metadata(self, data: PromotionDecision) -> dict[str, Any]:
        return {"alias": data.alias, "reason": data.reason, "champion_read": data.champion_read or "none"}
