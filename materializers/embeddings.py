from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Type

from safetensors.numpy import load_file, save_file
from zenml.enums import ArtifactType

from materializers.local_directory import LocalDirectoryMaterializer
from ragrouter.features.embeddings import Embeddings
from ragrouter.features.semantic import Encoder


class EmbeddingsMaterializer(LocalDirectoryMaterializer):
    """Vectors in safetensors, ids and encoder settings in JSON."""

    ASSOCIATED_TYPES = (Embeddings,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def write(self, data: Embeddings, directory: Path) -> None:
        save_file({"vectors": data.vectors}, str(directory / "vectors.safetensors"))
        (directory / "meta.json").write_text(json.dumps({"ids": data.ids, "encoder": asdict(data.encoder)}))

    def read(self, directory: Path, data_type: Type[Any]) -> Embeddings:
        meta = json.loads((directory / "meta.json").read_text())
        vectors = load_file(str(directory / "vectors.safetensors"))["vectors"]
        # artifacts written before encoders had a dtype were computed in float32
        return Embeddings(meta["ids"], vectors, Encoder(**{"dtype": "float32", **meta["encoder"]}))

    def extract_metadata(self, data: Embeddings) -> dict[str, Any]:
        return {"rows": len(data.ids), "dimension": int(data.vectors.shape[1]), "encoder": data.encoder.identity}
