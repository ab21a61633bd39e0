"""Check routing records against the data contract with Great Expectations.

Every failed expectation is turned into (file, row, field, message) problems, using each
record's `origin_file` and `origin_row`, so a user can fix the source file rather than read a
GX result. Two checks span rows in a way GX's pandas expectations cannot state, and run beside
them in plain pandas: every prompt has something visible in it, and prompts that read the same
after normalisation (`prompt_key`), in one source or two, have the same outcomes. A source
whose strong model is not better than its weak one on average is a warning, not an error.
The report serializes to JSON and renders as Markdown/HTML for the pipeline's dashboard;
`ensure_valid` turns a failed report into a DataValidationError.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from ragrouter.data.records import LABEL_KINDS, RECORD_COLUMNS, RoutingRecords, prompt_key
from ragrouter.errors import DataValidationError, shown

logger = logging.getLogger(__name__)

Problem = tuple[str, int | None, str | None, str]
TABLE = "<routing records>"  # the "file" of a problem about the whole table or a column
QUALITY_COLUMNS = ("strong_quality", "weak_quality")
NOT_NULL_COLUMNS = ("id", "prompt", "source", "group", *QUALITY_COLUMNS, "label_kind")
FLOAT_TYPES = ["float16", "float32", "float64", "Float32", "Float64"]
SHOWN_PROBLEMS = 20
Describe = Callable[[Any], str]  # the message for one failure of an expectation


@dataclass
class ExpectationOutcome:
    """One expectation's result, as a row of the report's summary table."""

    expectation: str
    column: str | None
    success: bool
    unexpected_count: int


@dataclass
class ValidationReport:
    """The outcome of validating routing records: a summary and every problem found."""

    success: bool
    problems: list[Problem]
    expectations: list[ExpectationOutcome]
    n_rows: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "n_rows": self.n_rows,
            "problems": [list(p) for p in self.problems],
            "expectations": [asdict(e) for e in self.expectations],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        return cls(
            success=data["success"],
            n_rows=data["n_rows"],
            problems=[(f, r, c, m) for f, r, c, m in data["problems"]],
            expectations=[ExpectationOutcome(**e) for e in data["expectations"]],
            warnings=list(data.get("warnings", [])),
        )

    @property
    def rejected_rows(self) -> int:
        """How many records at least one problem names (0 when the data passed)."""
        return len({(f, r) for f, r, _, _ in self.problems if r is not None})

    def to_markdown(self) -> str:
        """A summary table of the expectations, the warnings, then the first problems."""
        lines = [f"**Data validation {self._verdict()}** ({self.n_rows:,} rows)", ""]
        lines += [f"- warning: {w}" for w in self.warnings] + ([""] if self.warnings else [])
        for headers, rows in self._tables():
            lines += [
                "| " + " | ".join(headers) + " |",
                "|" + " --- |" * len(headers),
                *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows),
                "",
            ]
        return "\n".join(lines + [self._problem_note()]).rstrip() + "\n"

    def to_html(self) -> str:
        """The Markdown report's content as standalone HTML (for a ZenML HTMLString)."""
        parts = [f"<h3>Data validation {self._verdict()} ({self.n_rows:,} rows)</h3>"]
        parts += [f"<p>warning: {html.escape(w)}</p>" for w in self.warnings]
        for headers, rows in self._tables():
            head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append(f"<p>{html.escape(self._problem_note())}</p>")
        return "\n".join(parts)

    def _verdict(self) -> str:
        return "passed" if self.success else "FAILED"

    def _tables(self) -> list[tuple[list[str], list[list[Any]]]]:
        summary = [
            [e.expectation, e.column or "", "yes" if e.success else "NO", e.unexpected_count]
            for e in self.expectations
        ]
        tables = [(["expectation", "column", "passed", "unexpected"], summary)]
        if self.problems:
            shown = [["" if v is None else v for v in p] for p in self.problems[:SHOWN_PROBLEMS]]
            tables.append((["file", "row", "field", "problem"], shown))
        return tables

    def _problem_note(self) -> str:
        if len(self.problems) <= SHOWN_PROBLEMS:
            return f"{len(self.problems)} problem(s)."
        return f"{len(self.problems)} problems; the first {SHOWN_PROBLEMS} are shown."


def ensure_valid(report: ValidationReport) -> None:
    """Stop a pipeline on invalid data, naming every problem's file, row and field."""
    if not report.success:
        raise DataValidationError(report.problems)


def validate_records(
    records: RoutingRecords, max_prompt_chars: int = 100_000, min_rows: int = 1
) -> ValidationReport:
    """Run the data-contract expectations on `records` and collect every problem."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with warnings.catch_warnings():  # its dependencies warn about Python versions at import
        warnings.simplefilter("ignore", FutureWarning)
        import great_expectations as gx  # slow to import: only when validating

    frame = records.frame.reset_index(drop=True)
    context = _ephemeral_context(gx)
    checks = _checks(gx.expectations, max_prompt_chars, min_rows)
    suite = context.suites.add(gx.ExpectationSuite(name="routing_records"))
    for i, (expectation, _) in enumerate(checks):
        expectation.meta = {"check": i}  # finds the message for a result
        suite.add_expectation(expectation)
    batch = (
        context.data_sources.add_pandas("records")
        .add_dataframe_asset("records")
        .add_batch_definition_whole_dataframe("all")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="routing_records", data=batch, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"}
    )

    problems: list[Problem] = []
    outcomes = []
    success = bool(result.success)
    for res in sorted(result.results, key=lambda r: r.expectation_config.meta["check"]):
        config = res.expectation_config
        column = config.kwargs.get("column")
        details = res.result or {}
        outcomes.append(
            ExpectationOutcome(
                config.type, column, bool(res.success), int(details.get("unexpected_count", 0))
            )
        )
        if not res.success:
            describe = checks[config.meta["check"]][1]
            problems += _problems(frame, column, details, res.exception_info, describe)
    if {"id", "prompt", "source", *QUALITY_COLUMNS} <= set(frame.columns):
        for name, found in (("prompt_has_visible_text", _invisible_prompts(frame)),
                            ("equal_prompts_have_equal_outcomes", _conflicting_prompts(frame))):
            outcomes.append(ExpectationOutcome(name, "prompt", not found, len(found)))
            problems += found
            success = success and not found
    problems.sort(key=lambda p: (p[0], p[1] or 0, p[2] or ""))
    report = ValidationReport(success, problems, outcomes, len(frame), _weak_strong_models(frame))
    for warning in report.warnings:
        logger.warning(warning)
    logger.info("validated %d records: success=%s, %d problem(s)", len(frame), success, len(problems))
    return report


def _invisible_prompts(frame: pd.DataFrame) -> list[Problem]:
    """Prompts with nothing a reader can see: empty, whitespace, control characters (NUL),
    zero-width or bidi marks, ANSI escapes. (A missing prompt is the not-null check's.)"""
    keys = frame["prompt"].map(_key_or_none)
    blank = frame.index[frame["prompt"].notna() & (keys == "")]
    return [
        (*_origin(frame, i), "prompt", f"prompt has nothing visible in it: {shown(frame.at[i, 'prompt'])}")
        for i in blank
    ]


def _conflicting_prompts(frame: pd.DataFrame) -> list[Problem]:
    """Records whose prompt reads the same as another record's (after `prompt_key`), in the
    same source or another, with different outcomes. Exact repeats within a source share an
    id and are the unique-id expectation's to report."""
    keys = frame["prompt"].map(_key_or_none)
    outcome = list(zip(frame["strong_quality"], frame["weak_quality"]))
    table = pd.DataFrame({"key": keys, "id": frame["id"], "outcome": outcome}).dropna(subset=["key"])
    table = table[table["key"] != ""]
    problems: list[Problem] = []
    for _, twins in table[table["key"].duplicated(keep=False)].groupby("key", sort=False):
        if twins["id"].nunique() < 2 or twins["outcome"].nunique() < 2:
            continue
        for i in twins.index:
            other = next(j for j in twins.index if twins.at[j, "outcome"] != twins.at[i, "outcome"])
            file, row = _origin(frame, other)
            problems.append(
                (*_origin(frame, i), "prompt",
                 f"reads the same as the prompt of {file} row {row} (source "
                 f"{frame.at[other, 'source']!r}) after Unicode and whitespace normalisation, "
                 f"but the outcomes differ: {_pair(twins.at[i, 'outcome'])} vs {_pair(twins.at[other, 'outcome'])}")
            )
    return problems


def _weak_strong_models(frame: pd.DataFrame) -> list[str]:
    """One warning per source whose strong model does not score above its weak one on average
    (swapped columns, or a pair not worth routing between)."""
    if not {"source", *QUALITY_COLUMNS} <= set(frame.columns):
        return []
    warnings = []
    means = frame.groupby("source")[list(QUALITY_COLUMNS)].mean(numeric_only=True)
    for source, row in means.iterrows():
        strong, weak = row.get("strong_quality"), row.get("weak_quality")
        if pd.notna(strong) and pd.notna(weak) and strong <= weak:
            n = int((frame["source"] == source).sum())
            warnings.append(
                f"source {source!r}: the strong model is not better than the weak one on average "
                f"(mean quality {strong:.4f} vs {weak:.4f} over {n:,} records); are strong_column "
                "and weak_column swapped?"
            )
    return warnings


def _key_or_none(prompt: object) -> str | None:
    return prompt_key(prompt) if isinstance(prompt, str) else None


def _pair(outcome: tuple[float, float]) -> str:
    return f"(strong {outcome[0]:g}, weak {outcome[1]:g})"


def _checks(
    expectations: Any, max_prompt_chars: int, min_rows: int
) -> list[tuple[Any, Describe]]:
    """The contract as expectations, each with the message for one of its failures."""
    e = expectations
    checks: list[tuple[Any, Describe]] = [
        (
            e.ExpectTableColumnsToMatchOrderedList(column_list=list(RECORD_COLUMNS)),
            lambda found: f"columns {found} do not match {list(RECORD_COLUMNS)}",
        ),
        (
            e.ExpectTableRowCountToBeBetween(min_value=min_rows),
            lambda n: f"{n} row(s); at least {min_rows} needed",
        ),
    ]
    checks += [
        (e.ExpectColumnValuesToNotBeNull(column=c), lambda _: "value is missing")
        for c in NOT_NULL_COLUMNS
    ]
    for c in QUALITY_COLUMNS:
        checks += [
            (
                e.ExpectColumnValuesToBeInTypeList(column=c, type_list=FLOAT_TYPES),
                lambda dtype: f"column has type {dtype}; expected a float type",
            ),
            (
                e.ExpectColumnValuesToBeBetween(column=c, min_value=0.0, max_value=1.0),
                lambda v: f"quality {v} is outside [0, 1]",
            ),
        ]
    checks += [
        (
            e.ExpectColumnValueLengthsToBeBetween(column="prompt", max_value=max_prompt_chars),
            lambda v: f"prompt has {len(v):,} characters; at most {max_prompt_chars:,} allowed",
        ),
        (
            e.ExpectColumnValuesToBeUnique(column="id"),
            lambda v: f"duplicate id {v}: the same prompt appears with conflicting outcomes",
        ),
        (
            e.ExpectColumnValuesToBeInSet(column="label_kind", value_set=list(LABEL_KINDS)),
            lambda v: f"label_kind {v!r} is not one of {list(LABEL_KINDS)}",
        ),
    ]
    return checks


def _ephemeral_context(gx: Any) -> Any:
    """An in-memory GX context without analytics or progress bars."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _problems(
    frame: pd.DataFrame,
    column: str | None,
    details: dict[str, Any],
    exception_info: dict[str, Any],
    describe: Describe,
) -> list[Problem]:
    """One problem per unexpected row, or one for the table/column when no row is at fault."""
    error = _exception_message(exception_info)
    if error is not None:
        return [(TABLE, None, column, f"could not be checked: {error}")]
    indices = details.get("unexpected_index_list")
    if not indices:
        return [(TABLE, None, column, describe(details.get("observed_value")))]
    return [(*_origin(frame, i), column, describe(frame.at[i, column])) for i in indices]


def _origin(frame: pd.DataFrame, index: int) -> tuple[str, int | None]:
    """The source file and 1-based data row of a record (its position if origin is lost)."""
    if "origin_file" not in frame or "origin_row" not in frame:
        return TABLE, index + 1
    row = frame.at[index, "origin_row"]
    return str(frame.at[index, "origin_file"]), int(row) if pd.notna(row) else None


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports errors flat or keyed by metric; return the first raised one's message."""
    for entry in [info, *info.values()]:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message"))
    return None


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
