from __future__ import annotations

from pathlib import Path
from typing import Any, Type

from zenml.enums import ArtifactType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.features.query_features import QueryFeatures


class QueryFeaturesMaterializer(LocalDirectoryMaterializer):
    """Flat arrays and offsets in one safetensors file, identity and record ids in JSON."""

    ASSOCIATED_TYPES = (QueryFeatures,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def write(self, data: QueryFeatures, directory: Path) -> None:
        data.save(directory)

    def read(self, directory: Path, data_type: Type[Any]) -> QueryFeatures:
        return QueryFeatures.load(directory)

    def extract_metadata(self, data: QueryFeatures) -> dict[str, Any]:
        tokens = len(data.arrays["token_states"]) if "token_states" in data.arrays else 0
        return {"rows": len(data), "tokens": tokens, "identity": data.identity}
