"""Read configured sources into routing records, with every bad input named by file and row.

Ingestion only reads and reshapes: it drops contaminated prompts, collapses duplicate records
(prompts equal after Unicode and whitespace normalisation, `prompt_key`, with equal outcomes)
and (if asked) drops prompts with conflicting outcomes, and counts what it did. Quality cells
that need tidying to parse (" TRUE ", full-width digits) are read with a warning and counted;
ambiguous ones ("0_1", non-ASCII digits) are errors. Values that are well-typed but out of
contract (NaN or 1.7 quality, empty or invisible prompts) are kept as they are, so that
validation reports all of them at once. Decisions per bad input: docs/data.md.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from ragrouter.data.hf_dataset import read_hf_dataset
from ragrouter.data.mt_bench import JUDGEMENT_COLUMNS, JUDGEMENTS_FILE, QUESTION_COLUMNS, QUESTIONS_FILE, turn_table
from ragrouter.data.records import RECORD_COLUMNS, RoutingRecords, prompt_hash, prompt_key, record_id
from ragrouter.data.sources import SourceConfig
from ragrouter.errors import DataValidationError, shown

logger = logging.getLogger(__name__)

Problem = tuple[str, int | None, str | None, str]
T = TypeVar("T")

TABLE_FORMATS: tuple[str, ...] = (".csv", ".jsonl", ".parquet")
_MISSING_TEXT = frozenset({"", "nan", "na", "null", "none"})
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII only
_SAMPLE_BUCKETS = 10_000


@dataclass
class SourceCounts:
    """What happened to one source's rows, in the order ingestion applies the steps."""

    read: int = 0
    values_normalised: int = 0  # quality cells read after trimming or NFKC (" TRUE ", "１")
    contaminated_dropped: int = 0
    duplicates_collapsed: int = 0  # the same prompt, text for text, with the same outcomes
    near_duplicates_collapsed: int = 0  # equal only after normalisation (`prompt_key`)
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
    return _read_source(cfg)[0]


def _read_source(cfg: SourceConfig) -> tuple[pd.DataFrame, int]:
    """(records, how many quality cells were normalised to be read)."""
    if cfg.kind == "hf_dataset":
        chunks = [(origin, table, rows, None) for origin, table, rows in read_hf_dataset(cfg)]
    elif cfg.kind == "mt_bench":
        chunks = [(*_mt_bench_turns(cfg), None)]
    else:
        chunks = [(file, *_read_table(file), group) for file, group in _source_files(cfg)]
    if not chunks:  # an outcome folder nothing has been dropped in yet
        logger.warning("source %s: no %s files in %s yet", cfg.name, "/".join(TABLE_FORMATS), cfg.path)
        numeric = {"strong_quality": np.float64, "weak_quality": np.float64, "origin_row": np.int64}
        return pd.DataFrame({column: pd.Series(dtype=numeric.get(column, object)) for column in RECORD_COLUMNS}), 0
    converted = [_to_records(cfg, *chunk) for chunk in chunks]
    return pd.concat([f for f, _ in converted], ignore_index=True), sum(n for _, n in converted)


def _mt_bench_turns(cfg: SourceConfig) -> tuple[str, pd.DataFrame, list[int]]:
    """MT-Bench's questions joined with the two models' judgements, one row per turn."""
    directory = Path(cfg.path)
    if not directory.is_dir():
        raise DataValidationError([(cfg.path, None, None, "MT-Bench directory not found")])
    questions_file = os.path.join(cfg.path, QUESTIONS_FILE)
    judgements_file = os.path.join(cfg.path, JUDGEMENTS_FILE)
    questions, question_rows = _read_table(questions_file)
    judgements, judgement_rows = _read_table(judgements_file)
    _require_columns(questions_file, questions, list(QUESTION_COLUMNS))
    _require_columns(judgements_file, judgements, list(JUDGEMENT_COLUMNS))
    assert cfg.strong_column is not None and cfg.weak_column is not None  # set by SourceConfig
    table, rows = turn_table(
        (questions_file, questions, question_rows),
        (judgements_file, judgements, judgement_rows),
        (cfg.strong_column, cfg.weak_column),
    )
    return questions_file, table, rows


def _ingest_one(cfg: SourceConfig) -> tuple[pd.DataFrame, SourceCounts]:
    frame, normalised = _read_source(cfg)
    counts = SourceCounts(read=len(frame), values_normalised=normalised)
    contaminated = _same_origin(frame, frame["prompt"].isin(_contaminated_prompts(cfg)))
    counts.contaminated_dropped = int(contaminated.sum())
    frame = _handle_duplicates(cfg, frame[~contaminated], counts)
    if cfg.sample_fraction is not None:
        frame = _sample(frame, cfg.sample_fraction, counts)
    counts.kept = len(frame)
    logger.info("source %s: %s", cfg.name, asdict(counts))
    return frame, counts


def _same_origin(frame: pd.DataFrame, rows: pd.Series) -> pd.Series:
    """`rows` widened to every record read from the same source row (MT-Bench: a question's
    two turns go together, as RouteLLM drops a contaminated question whole)."""
    origin = pd.MultiIndex.from_frame(frame[["origin_file", "origin_row"]])
    return pd.Series(origin.isin(origin[rows.to_numpy()]), index=frame.index)


def _handle_duplicates(
    cfg: SourceConfig, frame: pd.DataFrame, counts: SourceCounts
) -> pd.DataFrame:
    """Collapse repeats of a prompt (after normalisation) with the same outcomes; keep or drop
    conflicting ones. Prompts with nothing visible are left alone for validation to report."""
    keys = frame["prompt"].map(prompt_key, na_action="ignore")
    keys = keys.where(keys != "")
    has_prompt = keys.notna()
    outcome = ["strong_quality", "weak_quality"]
    repeated = frame.assign(_key=keys).duplicated(["_key", *outcome]) & has_prompt
    exact = frame.duplicated(["prompt", *outcome]) & has_prompt
    counts.duplicates_collapsed = int(exact.sum())
    counts.near_duplicates_collapsed = int((repeated & ~exact).sum())
    if counts.near_duplicates_collapsed:
        logger.warning(
            "source %s: %d prompts equal others only after Unicode/whitespace normalisation "
            "and have the same outcomes: collapsed into one record each, e.g. %s",
            cfg.name, counts.near_duplicates_collapsed, _origins(frame[repeated & ~exact].head(4)),
        )
    frame, keys, has_prompt = frame[~repeated], keys[~repeated], has_prompt[~repeated]
    conflicting = keys.duplicated(keep=False) & has_prompt
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
    if cfg.kind == "folder":
        if not Path(cfg.path).is_dir():
            raise DataValidationError([(cfg.path, None, None, "folder not found")])
        names = sorted(p.name for p in Path(cfg.path).iterdir() if p.suffix.lower() in TABLE_FORMATS and p.is_file())
        return [(os.path.join(cfg.path, n), None) for n in names]
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
        invalid = [(file, number, key, why) for key, why in _surrogates(obj)]
        if invalid:
            problems += invalid
            continue
        objects.append(obj)
        rows.append(number)
    if problems:
        raise DataValidationError(problems)
    return pd.DataFrame.from_records(objects), rows


def _surrogates(obj: dict) -> list[tuple[str, str]]:
    """(key, why) for each value of a JSON object holding a lone surrogate: JSON's \\ud800
    escape makes one, and it is not valid Unicode (no UTF-8 for it, no Arrow string)."""
    found = []
    for key, value in obj.items():
        for text in _strings(key, value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                char = ord(text[err.start])
                field = key.encode("utf-8", "backslashreplace").decode("utf-8")
                found.append((field, f"not valid Unicode: lone surrogate U+{char:04X} at character {err.start + 1}"))
                break
    return found


def _strings(*values: object) -> list[str]:
    """Every string in nested JSON values (keys included)."""
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out += _strings(*value)
        elif isinstance(value, dict):
            out += _strings(*value.keys(), *value.values())
    return out


def _to_records(
    cfg: SourceConfig, file: str, table: pd.DataFrame, rows: list[int], group: str | None
) -> tuple[pd.DataFrame, int]:
    """Reshape a raw table into RECORD_COLUMNS, checking the type of every used value; also
    returns how many quality cells had to be normalised to be read.

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
    normalised = _normalised_cells(file, table, rows, [c for c in quality_columns.values() if c is not None])
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
    return frame.loc[:, list(RECORD_COLUMNS)], normalised


def _normalised_cells(file: str, table: pd.DataFrame, rows: list[int], columns: list[str]) -> int:
    """How many text cells of `columns` read differently from how they are written (padding,
    full-width digits); a warning names the first ones."""
    changed = [
        (row, column, value)
        for column in columns
        for row, value in zip(rows, table[column].tolist())
        if isinstance(value, str) and _tidy(value) != value
    ]
    if changed:
        logger.warning(
            "%s: %d quality value(s) read after trimming or Unicode (NFKC) normalisation, e.g. %s",
            file, len(changed),
            "; ".join(f"row {r}, field '{c}': {shown(v)}" for r, c, v in changed[:3]),
        )
    return len(changed)


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
    """A quality as a float: booleans (also "True"/"False") become 1.0/0.0, numbers stay.

    Text is read after trimming and NFKC ("１" is 1) in plain decimal notation only: Python's
    float() would also take "0_1" (as 1.0) and other scripts' digits, which no data file
    means as a number.
    """
    if _is_missing(value):
        return math.nan
    if isinstance(value, (bool, np.bool_, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValueError("integer too large for a float") from None
    if isinstance(value, str):
        text = _tidy(value).lower()
        if text in ("true", "false"):
            return float(text == "true")
        if text in _MISSING_TEXT:
            return math.nan
        if _NUMBER.fullmatch(text):
            number = float(text)
            if math.isinf(number):  # the pattern admits no "inf": the digits overflowed
                raise ValueError("number too large for a float")
            return number
    raise ValueError("expected a boolean (True/False) or a number")


def _tidy(text: str) -> str:
    """Text as a cell is read: NFKC-normalised (full-width digits to ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


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
