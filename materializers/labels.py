from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Type

import pandas as pd
from zenml.enums import ArtifactType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.labels import Labels


class LabelsMaterializer(LocalDirectoryMaterializer):
    """Labels as Parquet plus their threshold in JSON."""

    ASSOCIATED_TYPES = (Labels,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def write(self, data: Labels, directory: Path) -> None:
        data.frame.to_parquet(directory / "labels.parquet", index=False)
        (directory / "labels.json").write_text(json.dumps({"threshold": data.threshold}))

    def read(self, directory: Path, data_type: Type[Any]) -> Labels:
        meta = json.loads((directory / "labels.json").read_text())
        return Labels(pd.read_parquet(directory / "labels.parquet"), meta["threshold"])

    def extract_metadata(self, data: Labels) -> dict[str, Any]:
        return {
            "records": len(data),
            "threshold": data.threshold,
            "strong_needed_fraction": float(data.frame["strong_needed"].mean()) if len(data) else 0.0,
            "mean_gain": float(data.frame["gain"].mean()) if len(data) else 0.0,
        }
