"""The routing-record data contract (DESIGN.md): one row per query with both models' quality.

Records travel as a pandas DataFrame wrapped in :class:`RoutingRecords`, so a ZenML
materializer can persist them as Parquet and every step can rely on the columns below.
`origin_file` and `origin_row` keep where each record came from, so that any error found
later (validation, labels) can name the source file and row. A source may also give both
models' responses (and a reference answer): records whose qualities are missing are then graded
by an LLM judge (ragrouter.judge), which names itself in `judge` (None for golden labels).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import pandas as pd

RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "prompt",
    "source",
    "group",
    "strong_quality",
    "weak_quality",
    "label_kind",
    "origin_file",
    "origin_row",
    "strong_response",
    "weak_response",
    "reference",
    "judge",
)
# Text a judge grades: both models' answers and a reference answer; None where a source has none.
RESPONSE_COLUMNS: tuple[str, ...] = ("strong_response", "weak_response", "reference")
LABEL_KINDS = ("golden", "judge")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Unicode categories a reader cannot see: controls, format characters (zero-width, bidi
# overrides, BOM) and surrogates; whitespace is kept as a separator.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs"})
_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")  # Cc but whitespace (\t-\r, \x1c-\x1f)


def record_id(source: str, prompt: str) -> str:
    """Stable id of a record: the same source and prompt give the same id on any machine."""
    digest = hashlib.sha256(f"{source}\x1f{prompt}".encode("utf-8")).hexdigest()
    return digest[:16]


def prompt_key(prompt: str) -> str:
    """A prompt as a reader sees it: NFKC-normalised, ANSI escapes and invisible characters
    (controls, zero-width and bidi marks) removed, whitespace runs collapsed to one space.

    Two prompts with the same key are the same question (duplicates at ingestion, one fold in
    the splits); an empty key is a prompt with nothing visible in it.
    """
    text = _ANSI_ESCAPE.sub("", prompt)
    if text.isascii():  # most prompts: NFKC changes nothing, only controls are invisible
        return " ".join(_ASCII_CONTROLS.sub("", text).split())
    text = unicodedata.normalize("NFKC", text)
    visible = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in _INVISIBLE)
    return " ".join(visible.split())


def prompt_hash(prompt: str) -> int:
    """Stable integer hash of a prompt, used to assign cross-validation folds."""
    return int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12], 16)


@dataclass
class RoutingRecords:
    """Routing records in DESIGN.md's contract; `frame` has exactly RECORD_COLUMNS (a frame
    without the optional ones, the responses and the judge's name, has them as None)."""

    frame: pd.DataFrame

    def __post_init__(self) -> None:
        absent = [c for c in (*RESPONSE_COLUMNS, "judge") if c not in self.frame.columns]
        if absent:
            self.frame = self.frame.assign(**{c: pd.Series([None] * len(self.frame), index=self.frame.index, dtype=object) for c in absent})
        missing = [c for c in RECORD_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"routing records lack columns {missing}")
        self.frame = self.frame.loc[:, list(RECORD_COLUMNS)].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def prompts(self) -> list[str]:
        return self.frame["prompt"].tolist()

    @property
    def sources(self) -> list[str]:
        return sorted(self.frame["source"].unique().tolist())

    def counts_by_source(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.frame["source"].value_counts().sort_index().items()}
