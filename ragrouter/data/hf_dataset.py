"""A Hugging Face `datasets` dataset as raw source tables, read in one of three ways.

- a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (`load_from_disk`;
  a DatasetDict gives its `split`);
- Parquet files: one `.parquet` file, a folder of them or a glob (the hub's `data/*.parquet`
  shards), read with pyarrow, each shard with its own row numbers;
- otherwise a hub name (`routellm/gpt4_judge_battles`), read by `datasets.load_dataset` at the
  pinned `revision` (required) and `split`. Nothing here reaches the hub in tests: the project's
  machines have no route to it, so only the local ways are tested.

Each table is returned with the name an error should quote (`<name>@<revision>[<split>]` for
the hub, the shard file for Parquet) and its 1-based row numbers; ingest.py maps the columns as
for a `table` source.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd

from ragrouter.data.sources import SourceConfig
from ragrouter.errors import DataValidationError

Chunk = tuple[str, pd.DataFrame, list[int]]  # (origin, rows, each row's 1-based number)
SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes at the top


def read_hf_dataset(cfg: SourceConfig) -> list[Chunk]:
    """The source's rows as tables with their origins (see the module docstring)."""
    path = Path(cfg.path)
    if path.is_dir() and any((path / marker).is_file() for marker in SAVED_MARKERS):
        return [_from_disk(cfg)]
    shards = _parquet_shards(cfg.path)
    if shards:
        return [_parquet(shard) for shard in shards]
    if path.exists() or glob.has_magic(cfg.path):
        raise _error(cfg.path, None, "neither a save_to_disk folder nor Parquet files")
    return [_from_hub(cfg)]


def _from_disk(cfg: SourceConfig) -> Chunk:
    import datasets  # slow to import: only for this kind of source

    loaded = datasets.load_from_disk(cfg.path)
    if not isinstance(loaded, datasets.DatasetDict):
        return _chunk(cfg.path, loaded.to_pandas())
    if cfg.split not in loaded:
        raise _error(cfg.path, "split", f"no split {cfg.split!r}; splits found: {sorted(loaded)}")
    return _chunk(f"{cfg.path}[{cfg.split}]", loaded[cfg.split].to_pandas())


def _parquet_shards(path: str) -> list[str]:
    """The Parquet files `path` names: itself, the folder's `*.parquet` (recursively) or a glob."""
    if Path(path).is_dir():
        return sorted(str(p) for p in Path(path).rglob("*.parquet"))
    if glob.has_magic(path):
        return sorted(glob.glob(path, recursive=True))
    return [path] if path.endswith(".parquet") and Path(path).is_file() else []


def _parquet(shard: str) -> Chunk:
    try:
        return _chunk(shard, pd.read_parquet(shard))
    except Exception as err:  # pyarrow raises several types for a non-Parquet file
        raise _error(shard, None, f"cannot read as Parquet: {err}") from err


def _from_hub(cfg: SourceConfig) -> Chunk:
    if not cfg.revision:
        raise _error(
            cfg.path, "revision",
            "a dataset from the Hugging Face hub needs a pinned revision (a commit sha or tag), "
            "so that every run reads the same rows; or give a save_to_disk folder or Parquet files",
        )
    import datasets  # slow to import: only for this kind of source

    origin = f"{cfg.path}@{cfg.revision}[{cfg.split}]"
    try:
        loaded = datasets.load_dataset(cfg.path, revision=cfg.revision, split=cfg.split)
    except Exception as err:  # offline, unknown name, revision or split: all end the same way
        raise _error(origin, None, f"cannot load from the Hugging Face hub: {type(err).__name__}: {err}") from err
    return _chunk(origin, loaded.to_pandas())


def _chunk(origin: str, table: pd.DataFrame) -> Chunk:
    if table.empty:
        raise _error(origin, None, "the dataset has no rows")
    return origin, table, list(range(1, len(table) + 1))


def _error(origin: str, field: str | None, message: str) -> DataValidationError:
    return DataValidationError([(origin, None, field, message)])
