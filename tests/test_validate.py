"""Validation: every out-of-contract value is reported with its file, row and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragrouter.data.ingest import ingest_sources
from ragrouter.data.records import RoutingRecords
from ragrouter.data.sources import SourceConfig
from ragrouter.data.validate import ValidationReport, ensure_valid, validate_records
from ragrouter.errors import DataValidationError

HEADER = "prompt,strong,weak\n"
GOOD = "What is 2+2?,1,0\nCapital of France?,True,False\n"


def _records(tmp_path: Path, body: str) -> tuple[RoutingRecords, str]:
    """Records ingested from a CSV whose first rows are GOOD and then `body`."""
    path = tmp_path / "custom.csv"
    path.write_text(HEADER + GOOD + body, encoding="utf-8")
    cfg = SourceConfig(name="custom", kind="table", path=str(path), strong_column="strong",
                       weak_column="weak")
    return ingest_sources([cfg])[0], str(path)


def _error(records: RoutingRecords, **limits: int) -> str:
    with pytest.raises(DataValidationError) as info:
        ensure_valid(validate_records(records, **limits))
    return str(info.value)


def test_valid_records_pass(tmp_path: Path) -> None:
    records, _ = _records(tmp_path, "")
    report = validate_records(records)
    assert report.success and report.problems == [] and report.n_rows == 2
    assert all(e.success for e in report.expectations)
    assert {e.column for e in report.expectations} >= {"id", "prompt", "strong_quality"}
    ensure_valid(report)


BIG = "x" * 2_000_000


@pytest.mark.parametrize(
    ("body", "row", "field", "message"),
    [
        ("Too good,1.7,0\n", 3, "strong_quality", "quality 1.7 is outside [0, 1]"),
        ("Unknown,1,\n", 3, "weak_quality", "value is missing"),
        ('"",1,0\n', 3, "prompt", "prompt has nothing visible in it: ''"),
        ('"  \t ",1,0\n', 3, "prompt", "prompt has nothing visible in it: '  \\t '"),
        (f"{BIG},1,0\n", 3, "prompt", "prompt has 2,000,000 characters; at most 100,000 allowed"),
    ],
    ids=["quality_1.7", "nan_quality", "empty_prompt", "blank_prompt", "2mb_prompt"],
)
def test_bad_value_is_named_by_file_row_and_field(
    tmp_path: Path, body: str, row: int, field: str, message: str
) -> None:
    records, path = _records(tmp_path, body)
    assert f"{path}, row {row}, field '{field}': {message}" in _error(records)


def test_missing_prompt_and_id(tmp_path: Path) -> None:
    records, path = _records(tmp_path, "")
    records.frame.loc[1, ["prompt", "id"]] = None
    message = _error(records)
    for field in ("prompt", "id"):
        assert f"{path}, row 2, field '{field}': value is missing" in message


def test_conflicting_duplicate_prompt_names_both_rows(tmp_path: Path) -> None:
    records, path = _records(tmp_path, "What is 2+2?,0,1\n")
    message = _error(records)
    for row in (1, 3):
        assert f"{path}, row {row}, field 'id': duplicate id" in message
    assert "same prompt appears with conflicting outcomes" in message


def test_limits_are_configurable(tmp_path: Path) -> None:
    records, path = _records(tmp_path, "")
    assert f"{path}, row 2, field 'prompt': prompt has 18 characters" in _error(
        records, max_prompt_chars=15
    )
    assert "<routing records>: 2 row(s); at least 3 needed" in _error(records, min_rows=3)


def test_table_level_breaches(tmp_path: Path) -> None:
    records, _ = _records(tmp_path, "")
    records.frame["label_kind"] = ["golden", "vibes"]
    records.frame["weak_quality"] = records.frame["weak_quality"].astype(str)
    records.frame["extra"] = 1
    message = _error(records)
    assert "row 2, field 'label_kind': label_kind 'vibes' is not one of ['golden'," in message
    assert "field 'weak_quality': column has type str; expected a float type" in message
    assert "field 'weak_quality': could not be checked" in message
    assert "<routing records>: columns [" in message and "'extra']" in message


def test_report_round_trips_and_renders(tmp_path: Path) -> None:
    records, path = _records(tmp_path, "Too good,1.7,0\n")
    records.frame.loc[0, "label_kind"] = "<a|b>"
    report = validate_records(records)
    assert not report.success
    assert ValidationReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    markdown = report.to_markdown()
    assert "**Data validation FAILED** (3 rows)" in markdown
    assert "| expect_column_values_to_be_between | strong_quality | NO | 1 |" in markdown
    assert f"| {path} | 3 | strong_quality | quality 1.7 is outside [0, 1] |" in markdown
    assert "label_kind '<a\\|b>' is not one of" in markdown
    html = report.to_html()
    assert "<td>expect_column_values_to_be_between</td><td>strong_quality</td><td>NO</td>" in html
    assert "label_kind &#x27;&lt;a|b&gt;&#x27;" in html
