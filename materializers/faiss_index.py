from __future__ import annotations

from pathlib import Path
from typing import Any, Type

import faiss
from zenml.enums import ArtifactType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.retrieval import load_index, save_index


class FaissIndexMaterializer(LocalDirectoryMaterializer):
    """A FAISS index via faiss.write_index / read_index."""

    ASSOCIATED_TYPES = (faiss.Index,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.MODEL

    def write(self, data: faiss.Index, directory: Path) -> None:
        save_index(data, directory / "index.faiss")

    def read(self, directory: Path, data_type: Type[Any]) -> faiss.Index:
        return load_index(directory / "index.faiss")

    def extract_metadata(self, data: faiss.Index) -> dict[str, Any]:
        return {"vectors": int(data.ntotal), "dimension": int(data.d), "index_type": type(data).__name__}
