"""Errors the project raises on bad input: each names the file, the row and the field."""

from __future__ import annotations


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RAGRouterError(Exception):
    """Base class of the errors a user can act on (shown without a traceback by the CLI)."""


class DataValidationError(RAGRouterError):
    """Input data breaks the data contract.

    `problems` lists every finding as (file, row, field, message); `row` is the 1-based data
    row of the source file (the header is not counted), or None when the whole file or column
    is at fault.
    """

    def __init__(self, problems: list[tuple[str, int | None, str | None, str]]):
        self.problems = problems
        shown = problems[:10]
        lines = [_describe(*p) for p in shown]
        more = len(problems) - len(shown)
        if more > 0:
            lines.append(f"... and {more} more problem(s)")
        super().__init__("invalid routing data:\n  " + "\n  ".join(lines))


def _describe(file: str, row: int | None, field: str | None, message: str) -> str:
    where = file
    if row is not None:
        where += f", row {row}"
    if field:
        where += f", field '{field}'"
    return f"{where}: {message}"
