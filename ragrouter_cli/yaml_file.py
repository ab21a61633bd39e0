"""Reading a settings file named on the command line: a missing file, bad YAML or a document
that is not a mapping is a one-line error naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ragrouter.errors import RAGRouterError


def read_mapping(file: str, what: str) -> dict[str, Any]:
    path = Path(file)
    if not path.is_file():
        raise RAGRouterError(f"{file}: no such {what}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise RAGRouterError(f"{file}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise RAGRouterError(f"{file}: expected a mapping of settings, got a {type(document).__name__}")
    return document
