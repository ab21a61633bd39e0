from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Type

import pandas as pd
from zenml.enums import ArtifactType, VisualizationType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.data.records import RoutingRecords


class RoutingRecordsMaterializer(LocalDirectoryMaterializer):
    """Routing records as Parquet; the content hash lets unchanged records keep the cache."""

    ASSOCIATED_TYPES = (RoutingRecords,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def write(self, data: RoutingRecords, directory: Path) -> None:
        data.frame.to_parquet(directory / "records.parquet", index=False)

    def read(self, directory: Path, data_type: Type[Any]) -> RoutingRecords:
        return RoutingRecords(pd.read_parquet(directory / "records.parquet"))

    def compute_content_hash(self, data: RoutingRecords) -> str:
        row_hashes = pd.util.hash_pandas_object(data.frame, index=False).to_numpy()
        return hashlib.sha256(row_hashes.tobytes()).hexdigest()

    def save_visualizations(self, data: RoutingRecords) -> dict[str, VisualizationType]:
        frame = data.frame
        summary = frame.groupby("source").agg(
            records=("id", "size"),
            groups=("group", "nunique"),
            strong_quality=("strong_quality", "mean"),
            weak_quality=("weak_quality", "mean"),
        )
        text = "# Routing records\n\n" + summary.to_markdown(floatfmt=".4f") + "\n"
        return self.write_visualization("summary.md", text, VisualizationType.MARKDOWN)

    def extract_metadata(self, data: RoutingRecords) -> dict[str, Any]:
        return {"records": len(data), "by_source": data.counts_by_source()}
