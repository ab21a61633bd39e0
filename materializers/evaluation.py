from __future__ import annotations

from pathlib import Path
from typing import Any, Type

import pandas as pd
from zenml.enums import ArtifactType, VisualizationType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.evaluation.artifacts import EvaluationReport, OutOfFoldScores
from ragrouter.evaluation.report import write_report


class OutOfFoldScoresMaterializer(LocalDirectoryMaterializer):
    """Out-of-fold scores as a plain CSV, readable without this project."""

    ASSOCIATED_TYPES = (OutOfFoldScores,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def write(self, data: OutOfFoldScores, directory: Path) -> None:
        data.frame.to_csv(directory / "scores.csv", index=False)

    def read(self, directory: Path, data_type: Type[Any]) -> OutOfFoldScores:
        return OutOfFoldScores(pd.read_csv(directory / "scores.csv"))

    def save_visualizations(self, data: OutOfFoldScores) -> dict[str, VisualizationType]:
        return {str(Path(self.uri) / "scores.csv"): VisualizationType.CSV}

    def extract_metadata(self, data: OutOfFoldScores) -> dict[str, Any]:
        return {"rows": len(data.frame), "routers": sorted(data.frame["router"].unique().tolist())}


class EvaluationReportMaterializer(LocalDirectoryMaterializer):
    """The report files of ragrouter.evaluation.report: table.md/csv, curves_<protocol>.png, scores.csv."""

    ASSOCIATED_TYPES = (EvaluationReport,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA_ANALYSIS

    def write(self, data: EvaluationReport, directory: Path) -> None:
        write_report(data.table, data.scores, directory)

    def read(self, directory: Path, data_type: Type[Any]) -> EvaluationReport:
        return EvaluationReport(pd.read_csv(directory / "table.csv"), pd.read_csv(directory / "scores.csv"))

    def save_visualizations(self, data: EvaluationReport) -> dict[str, VisualizationType]:
        root = Path(self.uri)
        shown = {str(root / "table.md"): VisualizationType.MARKDOWN}
        for protocol in sorted(data.table["protocol"].unique()):
            shown[str(root / f"curves_{protocol}.png")] = VisualizationType.IMAGE
        return shown
