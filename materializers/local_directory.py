"""Base for materializers whose libraries write local files (faiss, safetensors, pyarrow).

Writes go to a local temporary directory first and are then copied into the artifact
store, so the same code works on a local or a remote (S3, GCS) artifact store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Type

from zenml.enums import VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils import io_utils


class LocalDirectoryMaterializer(BaseMaterializer):
    SKIP_REGISTRATION = True  # a base class: only its subclasses materialize types

    def write(self, data: Any, directory: Path) -> None:
        raise NotImplementedError

    def read(self, directory: Path, data_type: Type[Any]) -> Any:
        raise NotImplementedError

    def save(self, data: Any) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            self.write(data, Path(tmp))
            io_utils.copy_dir(tmp, self.uri, overwrite=True)

    def load(self, data_type: Type[Any]) -> Any:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            io_utils.copy_dir(self.uri, tmp, overwrite=True)
            return self.read(Path(tmp), data_type)

    def write_visualization(self, name: str, content: str | bytes, kind: VisualizationType) -> dict[str, VisualizationType]:
        """Write one visualization file into the artifact's folder; returns ZenML's mapping."""
        uri = os.path.join(self.uri, name)
        with self.artifact_store.open(uri, "wb" if isinstance(content, bytes) else "w") as handle:
            handle.write(content)
        return {uri: kind}
