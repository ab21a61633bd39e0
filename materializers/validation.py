from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Type

from zenml.enums import ArtifactType, VisualizationType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.data.validate import ValidationReport


class ValidationReportMaterializer(LocalDirectoryMaterializer):
    """The Great Expectations result as JSON, shown as a markdown report in the dashboard."""

    ASSOCIATED_TYPES = (ValidationReport,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA_ANALYSIS

    def write(self, data: ValidationReport, directory: Path) -> None:
        (directory / "validation.json").write_text(json.dumps(data.to_dict(), indent=2))

    def read(self, directory: Path, data_type: Type[Any]) -> ValidationReport:
        return ValidationReport.from_dict(json.loads((directory / "validation.json").read_text()))

    def save_visualizations(self, data: ValidationReport) -> dict[str, VisualizationType]:
        return self.write_visualization("validation.md", data.to_markdown(), VisualizationType.MARKDOWN)

    def extract_metadata(self, data: ValidationReport) -> dict[str, Any]:
        return {"success": data.success, "rows": data.n_rows, "problems": len(data.problems), "rejected": data.rejected_rows, "warnings": len(data.warnings)}
