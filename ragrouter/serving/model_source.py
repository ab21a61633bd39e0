"""Where the gateway's router comes from: a registered version (by alias or number) or a folder.

Only the project's own loader reads the bundle (JSON, safetensors, FAISS): the code a
version carries in its MLflow artifacts is never imported, so serving a version trusts the
files registry writers put there, not code they could put beside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ragrouter.bundle import RouterBundle
from ragrouter.errors import RAGRouterError

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


@dataclass
class LoadedModel:
    bundle: RouterBundle
    name: str
    version: str | None  # None: a folder
    created_at: float  # unix seconds the version was registered (outcomes after it are new to it)

    @property
    def label(self) -> str:
        return self.name if self.version is None else f"{self.name}/{self.version}"


class ModelSource:
    def __init__(self, uri: str):
        self.uri = uri
        match = _REGISTRY_URI.match(uri)
        if match is None:
            self.folder: Path | None = Path(uri)
            if not (self.folder / "bundle.json").is_file():
                raise RAGRouterError(f"model: {uri} is neither models:/<name>@<alias>, models:/<name>/<version> nor a saved bundle's folder")
            self.name, self.alias, self.version = self.folder.name, None, None
        else:
            self.folder = None
            self.name, self.alias, self.version = match["name"], match["alias"], match["version"]

    def current_version(self) -> str | None:
        """The version the URI names now (an alias may have moved); None for a folder."""
        if self.folder is not None:
            return None
        if self.version is not None:
            return self.version
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            return str(MlflowClient().get_model_version_by_alias(self.name, self.alias).version)
        except MlflowException as error:
            raise RAGRouterError(f"model: {self.uri}: no such alias in the registry at the tracking URI ({error.error_code})") from None

    def load(self, version: str | None = None) -> LoadedModel:
        """The router of `version` (by default the one the URI names now), ready to serve."""
        if self.folder is not None:
            bundle, created_at = RouterBundle.load(self.folder), (self.folder / "bundle.json").stat().st_mtime
        else:
            from mlflow import MlflowClient

            from ragrouter.registry.model_registry import load_bundle

            version = version or self.current_version()
            created_at = MlflowClient().get_model_version(self.name, version).creation_timestamp / 1000.0
            bundle = load_bundle(self.name, version)
        bundle.router.prepare_serving()
        bundle.router.score_prompts(["What is the capital of France?"])  # loads the encoder now, not on the first request
        return LoadedModel(bundle, self.name, version, created_at)
