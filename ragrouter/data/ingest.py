"""Read configured sources into routing records, with every bad input named by file and row.

Ingestion only reads and reshapes: it drops contaminated prompts, collapses exact duplicate
records and (if asked) drops prompts with conflicting outcomes, and counts what it did.
Values that are well-typed but out of contract (NaN or 1.7 quality, empty prompts) are kept
as they are, so that validation reports all of them at once.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from ragrouter.data.records import RECORD_COLUMNS, RoutingRecords, prompt_hash, record_id
from ragrouter.data.sources import SourceConfig
from ragrouter.errors import DataValidationError, shown

logger = logging.getLogger(__name__)

Problem = tuple[str, int | None, str | None, str]
T = TypeVar("T")

TABLE_FORMATS: tuple[str, ...] = (".csv", ".jsonl", ".parquet")
_MISSING_TEXT = frozenset({"", "nan", "na", "null", "none"})
_SAMPLE_BUCKETS = 10_000


@dataclass
class SourceCounts:
    """What happened to one source's rows, in the order ingestion applies the steps."""

    read: int = 0
    contaminated_dropped: int = 0
    duplicates_collapsed: int = 0
    conflicting_dropped: int = 0
    sampled_out: int = 0
    kept: int = 0


@dataclass
class IngestSummary:
    """Per-source counts, logged and attached to the pipeline run as metadata."""

    sources: dict[str, SourceCounts] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {name: asdict(counts) for name, counts in self.sources.items()}

    @property
    def kept(self) -> int:
        return sum(c.kept for c in self.sources.values())


def ingest_sources(cfgs: list[SourceConfig]) -> tuple[RoutingRecords, IngestSummary]:
    """Read every source, apply contamination, duplicate and sampling rules, and count them."""
    if not cfgs:
        raise ValueError("no sources configured")
    names = [cfg.name for cfg in cfgs]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must be unique, got {names}")
    summary = IngestSummary()
    frames = []
    for cfg in cfgs:
        frame, summary.sources[cfg.name] = _ingest_one(cfg)
        frames.append(frame)
    return RoutingRecords(pd.concat(frames, ignore_index=True)), summary


def read_source(cfg: SourceConfig) -> pd.DataFrame:
    """All rows of a source as a frame with RECORD_COLUMNS, before any row is dropped."""
    frames = []
    for file, group in _source_files(cfg):
        table, rows = _read_table(file)
        frames.append(_to_records(cfg, file, table, rows, group))
    return pd.concat(frames, ignore_index=True)


def _ingest_one(cfg: SourceConfig) -> tuple[pd.DataFrame, SourceCounts]:
    frame = read_source(cfg)
    counts = SourceCounts(read=len(frame))
    contaminated = frame["prompt"].isin(_contaminated_prompts(cfg))
    counts.contaminated_dropped = int(contaminated.sum())
    frame = _handle_duplicates(cfg, frame[~contaminated], counts)
    if cfg.sample_fraction is not None:
        frame = _sample(frame, cfg.sample_fraction, counts)
    counts.kept = len(frame)
    logger.info("source %s: %s", cfg.name, asdict(counts))
    return frame, counts


def _handle_duplicates(
    cfg: SourceConfig, frame: pd.DataFrame, counts: SourceCounts
) -> pd.DataFrame:
    """Collapse repeats of a prompt with the same outcomes; keep or drop conflicting ones."""
    has_prompt = frame["prompt"].notna()
    repeated = frame.duplicated(["prompt", "strong_quality", "weak_quality"]) & has_prompt
    counts.duplicates_collapsed = int(repeated.sum())
    frame = frame[~repeated]
    conflicting = frame["prompt"].duplicated(keep=False) & has_prompt[~repeated]
    if not conflicting.any():
        return frame
    action = "dropped" if cfg.conflicting_duplicates == "drop" else "kept for validation"
    logger.warning(
        "source %s: %d rows repeat a prompt with different outcomes (%s), e.g. %s",
        cfg.name,
        int(conflicting.sum()),
        action,
        _origins(frame[conflicting].sort_values("prompt").head(4)),
    )
    if cfg.conflicting_duplicates == "keep":
        return frame
    counts.conflicting_dropped = int(conflicting.sum())
    return frame[~conflicting]


def _sample(frame: pd.DataFrame, fraction: float, counts: SourceCounts) -> pd.DataFrame:
    """Keep the prompts whose stable hash falls in the first `fraction` of the buckets."""
    cutoff = fraction * _SAMPLE_BUCKETS
    prompts = (p if isinstance(p, str) else "" for p in frame["prompt"])
    keep = np.fromiter(
        (prompt_hash(p) % _SAMPLE_BUCKETS < cutoff for p in prompts), dtype=bool, count=len(frame)
    )
    counts.sampled_out = int((~keep).sum())
    return frame[keep]


def _source_files(cfg: SourceConfig) -> list[tuple[str, str | None]]:
    """The files of a source, each with the group its kind implies (None: from the config)."""
    if cfg.kind != "routellm_mmlu":
        return [(cfg.path, None)]
    directory = Path(cfg.path)
    if not directory.is_dir():
        raise DataValidationError([(cfg.path, None, None, "MMLU directory not found")])
    names = sorted(p.name for p in directory.glob("mmlu_*.csv"))
    if not names:
        raise DataValidationError([(cfg.path, None, None, "no mmlu_<subject>.csv files in it")])
    subjects = [n.removeprefix("mmlu_").removesuffix(".csv") for n in names]
    return [(os.path.join(cfg.path, n), s) for n, s in zip(names, subjects)]


def _read_table(file: str) -> tuple[pd.DataFrame, list[int]]:
    """A file's rows as raw values, with each row's 1-based number (JSONL: its line)."""
    path = Path(file)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise _file_error(file, f"unknown file format {suffix!r}; expected one of {TABLE_FORMATS}")
    if not path.is_file():
        raise _file_error(file, "file not found")
    if suffix == ".parquet":
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types for a non-Parquet file
            raise _file_error(file, f"cannot read as Parquet: {err}") from err
        rows = list(range(1, len(table) + 1))
    else:
        raw = path.read_bytes()
        if not raw.strip():
            raise _file_error(file, f"file is empty ({len(raw)} bytes)")
        text = _decode(file, raw, is_csv=suffix == ".csv")
        table, rows = _parse_csv(file, text) if suffix == ".csv" else _parse_jsonl(file, text)
    if table.empty:
        raise _file_error(file, "file has no data rows")
    return table, rows


def _decode(file: str, raw: bytes, is_csv: bool) -> str:
    """UTF-8 text of a file; on failure name the line (and the CSV data row) that holds it."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        message = f"not valid UTF-8: byte 0x{raw[err.start]:02x} on line {line}"
        if not is_csv:
            raise DataValidationError([(file, line, None, message)]) from None
        # The records read from the valid prefix plus a marker end with the offending one.
        prefix = raw[: err.start].decode("utf-8") + "x"
        records = sum(1 for r in csv.reader(io.StringIO(prefix)) if r)
        row = records - 1 if records > 1 else None  # the header is not a data row
        raise DataValidationError([(file, row, None, message)]) from None


def _parse_csv(file: str, text: str) -> tuple[pd.DataFrame, list[int]]:
    try:
        # Read text verbatim: a prompt "NA" stays a prompt; quality values are parsed later.
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise _file_error(file, f"cannot parse CSV: {err}") from err
    return table, list(range(1, len(table) + 1))


def _parse_jsonl(file: str, text: str) -> tuple[pd.DataFrame, list[int]]:
    objects: list[dict] = []
    rows: list[int] = []
    problems = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append((file, number, None, f"invalid JSON: {err.msg} (column {err.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append((file, number, None, f"expected a JSON object, got {shown(obj)}"))
            continue
        objects.append(obj)
        rows.append(number)
    if problems:
        raise DataValidationError(problems)
    return pd.DataFrame.from_records(objects), rows


def _to_records(
    cfg: SourceConfig, file: str, table: pd.DataFrame, rows: list[int], group: str | None
) -> pd.DataFrame:
    """Reshape a raw table into RECORD_COLUMNS, checking the type of every used value.

    A judged source has no quality columns: its qualities stay NaN until the judge grades them."""
    text_columns = {
        "strong_response": cfg.strong_response_column,
        "weak_response": cfg.weak_response_column,
        "reference": cfg.reference_column,
    }
    quality_columns = {"strong_quality": cfg.strong_column, "weak_quality": cfg.weak_column}
    wanted = [cfg.prompt_column, *quality_columns.values(), cfg.group_column, *text_columns.values()]
    _require_columns(file, table, [c for c in wanted if c is not None])
    problems: list[Problem] = []
    prompts = _convert(file, cfg.prompt_column, table[cfg.prompt_column], rows, _text, problems)
    qualities = {
        key: _convert(file, column, table[column], rows, _quality, problems) if column else [math.nan] * len(table)
        for key, column in quality_columns.items()
    }
    texts = {
        key: _convert(file, column, table[column], rows, _text, problems) if column else [None] * len(table)
        for key, column in text_columns.items()
    }
    if cfg.group_column is None:
        groups: list[str | None] = [group or cfg.name] * len(table)
    else:
        groups = _convert(file, cfg.group_column, table[cfg.group_column], rows, _text, problems)
    if problems:
        raise DataValidationError(problems)
    frame = pd.DataFrame(
        {
            "id": [record_id(cfg.name, p) if p is not None else None for p in prompts],
            "prompt": prompts,
            "source": cfg.name,
            "group": groups,
            "strong_quality": np.asarray(qualities["strong_quality"], dtype=np.float64),
            "weak_quality": np.asarray(qualities["weak_quality"], dtype=np.float64),
            "label_kind": cfg.label_kind,
            "origin_file": file,
            "origin_row": np.asarray(rows, dtype=np.int64),
            **{key: pd.Series(values, dtype=object) for key, values in texts.items()},
            "judge": pd.Series([None] * len(table), dtype=object),
        }
    )
    return frame.loc[:, list(RECORD_COLUMNS)]


def _require_columns(file: str, table: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        found = [str(c) for c in table.columns]
        raise DataValidationError(
            [(file, None, c, f"column {c!r} not found; columns found: {found}") for c in missing]
        )


def _convert(
    file: str,
    column: str,
    values: pd.Series,
    rows: list[int],
    parse: Callable[[object], T],
    problems: list[Problem],
) -> list[T | None]:
    """Parse each value of a column, recording (file, row, column, why) for those that fail."""
    out: list[T | None] = []
    for row, value in zip(rows, values.tolist()):
        try:
            out.append(parse(value))
        except (TypeError, ValueError) as err:
            problems.append((file, row, column, f"{err}, got {shown(value)}"))
            out.append(None)
    return out


def _text(value: object) -> str | None:
    """A text value; missing stays None so that validation reports it."""
    if _is_missing(value):
        return None
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


def _quality(value: object) -> float:
    """A quality as a float: booleans (also "True"/"False") become 1.0/0.0, numbers stay."""
    if _is_missing(value):
        return math.nan
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return float(text == "true")
        if text in _MISSING_TEXT:
            return math.nan
        try:
            return float(text)
        except ValueError:
            pass
    raise ValueError("expected a boolean (True/False) or a number")


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _contaminated_prompts(cfg: SourceConfig) -> set[str]:
    """Prompts to drop: a configured list must exist, RouteLLM's default one may be absent."""
    file = cfg.contaminated_file()
    if file is None:
        return set()
    if cfg.contaminated_path is None and not file.is_file():
        logger.warning("source %s: no contamination list at %s; nothing dropped", cfg.name, file)
        return set()
    table, rows = _read_table(str(file))
    _require_columns(str(file), table, ["eval_prompt"])
    problems: list[Problem] = []
    prompts = _convert(str(file), "eval_prompt", table["eval_prompt"], rows, _text, problems)
    if problems:
        raise DataValidationError(problems)
    return {p for p in prompts if p is not None}


def _origins(frame: pd.DataFrame) -> str:
    return ", ".join(f"{f} row {r}" for f, r in zip(frame["origin_file"], frame["origin_row"]))


def _file_error(file: str, message: str) -> DataValidationError:
    return DataValidationError([(file, None, None, message)])
