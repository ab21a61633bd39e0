"""Content fingerprint of the files a pipeline reads, so changed data invalidates the cache."""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import Iterable


def fingerprint_paths(paths: Iterable[str | Path]) -> str:
    """sha256 over the names and bytes of every file under the given paths (missing ones count too)."""
    digest = hashlib.sha256()
    for root in sorted(Path(p) for p in paths):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(str(file).encode())
            digest.update(file.read_bytes() if file.exists() else b"<missing>")
    return digest.hexdigest()[:16]


def source_paths(source: dict) -> list[Path]:
    """The paths one configured source reads: its file or folder (a glob, as of hf_dataset's
    Parquet shards, as the files it matches), and its contaminated-prompt list."""
    path = Path(source["path"])
    paths = [Path(p) for p in sorted(glob.glob(source["path"], recursive=True))] if glob.has_magic(source["path"]) else [path]
    if source.get("contaminated_path"):
        paths.append(Path(source["contaminated_path"]))
    elif path.suffix and (path.parent / "contaminated_prompts.jsonl").exists():
        paths.append(path.parent / "contaminated_prompts.jsonl")
    return paths


def fingerprint_sources(sources: Iterable[dict]) -> str:
    """Fingerprint of every file the configured sources read, contaminated-prompt lists included."""
    return fingerprint_paths([path for source in sources for path in source_paths(source)])


def file_digests(source: dict) -> dict[str, str]:
    """Full sha256 of each file a source reads (absolute path -> hex digest): what a registered
    model's lineage names as its data (none for a dataset read from a hub by name)."""
    digests = {}
    for root in source_paths(source):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root] if root.is_file() else []
        for file in files:
            digests[str(file.resolve())] = hashlib.sha256(file.read_bytes()).hexdigest()
    return digests
