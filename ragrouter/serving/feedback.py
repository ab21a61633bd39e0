"""Observed outcomes of routed prompts (what the gateway's `POST /feedback` accepts) and the
append-only logs that keep them.

An outcome is a prompt with both models' qualities in [0, 1]; its gain (strong - weak) is what
a retrieving router remembers (`Router.remember`), so routing learns between training runs.
Every process or replica that serves a router reads the same log from its own cursor, so all
of them remember the same outcomes in the same order:

- `JsonlFeedbackStore`: one JSONL file shared by the processes of one host;
- `PostgresFeedbackStore`: one table shared by replicas on several hosts.

The log is also the durable record the next training run ingests: a JSONL log (or what
`export_feedback` writes from PostgreSQL) is a `table` source with the columns LOG_COLUMNS.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path
from typing import BinaryIO, Protocol, Sequence

from ragrouter.errors import RAGRouterError, shown

logger = logging.getLogger(__name__)

OBSERVED = ("both", "strong", "weak", "judge")
MODELS = ("strong", "weak")
JUDGED_QUALITIES = {"strong": (1.0, 0.0), "weak": (0.0, 1.0), "tie": (0.5, 0.5)}  # winner -> (strong, weak)
LOG_COLUMNS = ("prompt", "strong_quality", "weak_quality", "observed", "created_at")
EXPORT_FORMATS = (".jsonl", ".parquet")


@dataclass(frozen=True)
class Outcome:
    """A routed prompt's outcome: both models' qualities (one imputed where only one model
    answered, see `outcome_from_feedback`), what was observed, and when it was recorded."""

    prompt: str
    strong_quality: float
    weak_quality: float
    observed: str  # "both" | "strong" | "weak" | "judge"
    created_at: float  # unix seconds

    def __post_init__(self) -> None:
        _check_prompt(self.prompt)
        for name in ("strong_quality", "weak_quality"):
            object.__setattr__(self, name, _quality(name, getattr(self, name)))
        if self.observed not in OBSERVED:
            raise ValueError(f"observed: must be one of {', '.join(OBSERVED)}, got {shown(self.observed)}")
        if isinstance(self.created_at, bool) or not isinstance(self.created_at, Real) or not math.isfinite(self.created_at):
            raise ValueError(f"created_at: must be unix seconds (a finite number), got {shown(self.created_at)}")
        object.__setattr__(self, "created_at", float(self.created_at))

    @property
    def gain(self) -> float:
        """strong - weak quality, in [-1, 1]: > 0 where the strong model helped."""
        return self.strong_quality - self.weak_quality


def outcome_from_feedback(
    prompt: str,
    *,
    strong_quality: object = None,
    weak_quality: object = None,
    model: object = None,
    quality: object = None,
    winner: object = None,
    quality_means: dict[str, float] | None,
    now: float | None = None,
) -> Outcome:
    """The outcome one piece of feedback gives, in exactly one of three forms:

    - both qualities (`strong_quality`, `weak_quality`): observed "both";
    - one model's (`model` "strong" or "weak", and its `quality`): the other model's quality
      is imputed as its mean on the training data (`quality_means`, from the served bundle's
      metadata), so the gain is that outcome's expected gain. A knn score is a
      similarity-weighted mean of gains, linear in each, so a mean of expected gains is the
      expected mean: imputing the expectation leaves the expected score where the unseen
      quality would have put it on average. (It is the marginal mean: for one prompt the two
      models' qualities correlate, easy prompts suit both.) Without `quality_means` this form
      is refused;
    - a judge's `winner` ("strong", "weak" or "tie"): qualities (1, 0), (0, 1), (0.5, 0.5).

    Qualities are numbers (or booleans) in [0, 1]. Every error is a ValueError whose message
    starts with the field at fault. `now` (unix seconds) stamps the outcome; default: the clock.
    """
    _check_prompt(prompt)
    given = {
        name: value
        for name, value in (("strong_quality", strong_quality), ("weak_quality", weak_quality), ("model", model), ("quality", quality), ("winner", winner))
        if value is not None
    }
    forms = [form for form, fields in (("both", ("strong_quality", "weak_quality")), ("one", ("model", "quality")), ("judge", ("winner",))) if set(fields) & set(given)]
    if len(forms) != 1:
        raise ValueError(
            "feedback: give exactly one of strong_quality and weak_quality (both models), model and quality (one model), "
            f"or winner (a judge); got {', '.join(given) or 'none of them'}"
        )
    created_at = time.time() if now is None else now
    if forms == ["both"]:
        for name in ("strong_quality", "weak_quality"):
            if name not in given:
                raise ValueError(f"{name}: needed with {next(iter(given))} (both models' qualities)")
        return Outcome(prompt, _quality("strong_quality", strong_quality), _quality("weak_quality", weak_quality), "both", created_at)
    if forms == ["one"]:
        if model is None:
            raise ValueError("model: needed with quality ('strong' or 'weak': whose quality it is)")
        if model not in MODELS:
            raise ValueError(f"model: must be 'strong' or 'weak' (with its quality), got {shown(model)}")
        if quality is None:
            raise ValueError(f"quality: needed with model {model!r}")
        if quality_means is None:
            raise ValueError(
                "model: one model's quality needs the other model's mean quality on the training data "
                "(quality_means), which the served router does not record; send both qualities or a judge's winner"
            )
        other = "weak" if model == "strong" else "strong"
        qualities = {model: _quality("quality", quality), other: _quality(f"quality_means.{other}", quality_means.get(other))}
        return Outcome(prompt, qualities["strong"], qualities["weak"], str(model), created_at)
    if winner not in JUDGED_QUALITIES:
        raise ValueError(f"winner: must be one of {', '.join(JUDGED_QUALITIES)}, got {shown(winner)}")
    strong, weak = JUDGED_QUALITIES[str(winner)]
    return Outcome(prompt, strong, weak, "judge", created_at)


class FeedbackStore(Protocol):
    """An append-only log of outcomes shared by several readers and writers: every reader
    gets, from its own cursor, everything appended since, in the one order of the log."""

    def append(self, outcomes: Sequence[Outcome]) -> None:
        """Add outcomes at the end of the log, durably, as one batch."""

    def read_since(self, cursor: int) -> tuple[list[Outcome], int]:
        """Everything appended after `cursor`, in order, and the cursor after it (0: from the start)."""

    def close(self) -> None:
        """Release what the store holds (a connection)."""


class JsonlFeedbackStore:
    """Outcomes as lines of one JSONL file (LOG_COLUMNS), shared by the processes of one host.

    An append holds an exclusive `flock` on the file and writes its batch of whole lines at
    once, so lines from several processes never interleave; a reader takes the file up to its
    last newline only, so it never returns a line still being written. The cursor is a byte
    offset. A writer that died mid-write leaves a last line without its newline, which no
    reader took: the next append cuts it off. `flock` holds between processes of one host on a
    local file system; replicas on several hosts share a `PostgresFeedbackStore`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.suffix != ".jsonl":
            raise ValueError(f"path: a feedback log is a .jsonl file (a training run reads it as a table source by its suffix), got {str(self.path)!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    def append(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        lines = b"".join(_log_line(outcome) for outcome in outcomes)
        with open(self.path, "a+b") as log:  # every write goes to the end; the lock goes with the close
            fcntl.flock(log, fcntl.LOCK_EX)
            self._cut_torn_line(log)
            log.write(lines)
            log.flush()
            os.fsync(log.fileno())

    def read_since(self, cursor: int) -> tuple[list[Outcome], int]:
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ValueError(f"cursor: must be a byte offset >= 0, got {shown(cursor)}")
        with open(self.path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            if cursor > size:
                raise ValueError(f"cursor: {cursor} is past the end of {self.path} ({size} bytes): the log was truncated or replaced")
            log.seek(cursor)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        outcomes, offset = [], cursor
        for line in complete.splitlines(keepends=True):
            try:
                row = json.loads(line)
                outcomes.append(Outcome(**{column: row[column] for column in LOG_COLUMNS}))
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{self.path}: the line at byte {offset} is not an outcome: {error}") from error
            offset += len(line)
        return outcomes, cursor + len(complete)

    def close(self) -> None:
        """Nothing is held between calls: each opens the file."""

    def _cut_torn_line(self, log: BinaryIO) -> None:
        """Truncate the file after its last newline (called under the lock)."""
        end = size = log.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - 65536)
            log.seek(start)
            newline = log.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end < size:
            logger.warning("%s: cut a torn last line of %d bytes (a writer died mid-write)", self.path, size - end)
            log.truncate(end)


class PostgresFeedbackStore:
    """Outcomes as rows of a PostgreSQL table, shared by replicas on several hosts.

    The table (created if missing) has a bigserial `id`, `created_at` (unix seconds) and the
    outcome's columns; the cursor is the last id read. A sequence hands out ids at insert, not
    at commit, so two appends in flight could commit out of id order and a reader between the
    commits would skip the lower id for good. An append therefore locks the table against
    other writers (EXCLUSIVE mode: readers go on) until it commits: ids become visible in
    order, and a reader that has seen id n has seen every row up to n. Feedback comes at
    request rates, which one writer at a time serves easily. One connection per store, its
    uses serialized, so one store may be shared by threads.
    """

    def __init__(self, url: str, table: str = "ragrouter_feedback"):
        import psycopg
        from psycopg import sql

        if not table:
            raise ValueError("table: must not be empty")
        self.table = table
        self._name = sql.Identifier(table)
        self._lock = threading.Lock()
        self._connection = psycopg.connect(url, autocommit=True)
        with self._connection.transaction():
            # two replicas starting at once: one creates the table, the other then finds it
            self._connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ragrouter feedback table {table}"])
            self._connection.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, created_at double precision NOT NULL, "
                    "prompt text NOT NULL, strong_quality double precision NOT NULL, weak_quality double precision NOT NULL, "
                    "observed text NOT NULL)"
                ).format(self._name)
            )

    def append(self, outcomes: Sequence[Outcome]) -> None:
        from psycopg import sql

        if not outcomes:
            return
        insert = sql.SQL("INSERT INTO {} (created_at, prompt, strong_quality, weak_quality, observed) VALUES (%s, %s, %s, %s, %s)").format(self._name)
        rows = [(o.created_at, o.prompt, o.strong_quality, o.weak_quality, o.observed) for o in outcomes]
        with self._lock, self._connection.transaction():
            self._connection.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self._name))
            with self._connection.cursor() as cursor:
                cursor.executemany(insert, rows)

    def read_since(self, cursor: int) -> tuple[list[Outcome], int]:
        from psycopg import sql

        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ValueError(f"cursor: must be an id >= 0, got {shown(cursor)}")
        query = sql.SQL("SELECT id, prompt, strong_quality, weak_quality, observed, created_at FROM {} WHERE id > %s ORDER BY id").format(self._name)
        with self._lock:
            rows = self._connection.execute(query, [cursor]).fetchall()
        outcomes = [Outcome(*row[1:]) for row in rows]
        return outcomes, int(rows[-1][0]) if rows else cursor

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def open_feedback_store(location: str) -> FeedbackStore:
    """A PostgreSQL store for a `postgresql://` (or `postgres://`) URL, else a JSONL file at that path."""
    if location.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            return PostgresFeedbackStore(location)
        except psycopg.Error as error:  # the message names host and database, never the password
            raise RAGRouterError(f"feedback store: cannot use PostgreSQL: {str(error).strip()}") from None
    return JsonlFeedbackStore(location)


def export_feedback(store: FeedbackStore, path: str | Path) -> int:
    """Write every outcome of `store` to a JSONL or Parquet file (by suffix) with LOG_COLUMNS,
    for a training run to read as a table source; returns how many. The file appears whole
    (written beside it, then renamed)."""
    path = Path(path)
    if path.suffix not in EXPORT_FORMATS:
        raise ValueError(f"path: must end in one of {', '.join(EXPORT_FORMATS)}, got {str(path)!r}")
    outcomes, _ = store.read_since(0)
    partial = path.with_name(path.name + ".part")
    if path.suffix == ".jsonl":
        partial.write_bytes(b"".join(_log_line(outcome) for outcome in outcomes))
    else:
        import pandas as pd

        pd.DataFrame([asdict(outcome) for outcome in outcomes], columns=list(LOG_COLUMNS)).to_parquet(partial, index=False)
    os.replace(partial, path)
    return len(outcomes)


def _log_line(outcome: Outcome) -> bytes:
    return json.dumps(asdict(outcome), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


def _check_prompt(prompt: object) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt: must be a non-empty string, got {shown(prompt)}")


def _quality(name: str, value: object) -> float:
    """A quality as a float: a number or boolean in [0, 1]."""
    if isinstance(value, Real) and 0.0 <= float(value) <= 1.0:
        return float(value)
    raise ValueError(f"{name}: must be a number in [0, 1], got {shown(value)}")
