"""Crafted bad inputs (issue 34, item 9): each is an error naming file, row and field, or is
normalised with a warning and counted; docs/data.md lists which is which.

Most cases run ingestion and validation directly; a few go through `ragrouter run training`
on the real ZenML and MLflow stores and must stop with exit code 2, one message and nothing
registered.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ragrouter.data.ingest import ingest_sources
from ragrouter.data.records import RoutingRecords
from ragrouter.data.sources import SourceConfig
from ragrouter.data.validate import ensure_valid, validate_records
from ragrouter.errors import DataValidationError

GOOD_ROWS = [
    {"prompt": "What is 2+2?", "strong": 1, "weak": 0},
    {"prompt": "Capital of France?", "strong": 1, "weak": 1},
    {"prompt": "Name a prime number.", "strong": 1, "weak": 0},
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    # json.dumps escapes what it must (NUL, lone surrogates) as \uXXXX: the file is valid UTF-8
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _csv(path: Path, body: str) -> Path:
    path.write_text("prompt,strong,weak\n" + body, encoding="utf-8")
    return path


def _source(path: Path, name: str = "custom") -> SourceConfig:
    return SourceConfig.from_dict({"name": name, "kind": "table", "path": str(path), "strong_column": "strong", "weak_column": "weak"})


def _ingest_error(*sources: SourceConfig) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        ingest_sources(list(sources))
    return info.value


def _validation_error(records: RoutingRecords) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        ensure_valid(validate_records(records))
    return info.value


# --- prompts with nothing visible: an error (validation) --------------------------------------

INVISIBLE = {
    "zero-width-spaces": "\u200b\u200b\u200c\u2060",
    "nul": "\x00\x00",
    "bidi-overrides": "\u202e\u202d\u2066\u2069",
    "ansi-escapes": "\x1b[31m\x1b[0m\x1b[2J",
    "mixed-with-whitespace": " \u200b\t\x00\x1b[1m \ufeff\n",
}


@pytest.mark.parametrize("case", sorted(INVISIBLE))
def test_a_prompt_with_nothing_visible_is_an_error(tmp_path: Path, case: str) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [*GOOD_ROWS, {"prompt": INVISIBLE[case], "strong": 1, "weak": 0}])
    records, _ = ingest_sources([_source(path)])
    assert len(records) == 4  # kept by ingestion, reported by validation
    problems = _validation_error(records).problems
    assert problems == [(str(path), 4, "prompt", problems[0][3])]
    assert problems[0][3].startswith("prompt has nothing visible in it")


def test_invisible_characters_around_visible_text_are_kept() -> None:
    records = RoutingRecords(_frame([("\u200bWhat is 2+2?\x1b[0m", 1.0, 0.0), ("Capital?", 1.0, 1.0)]))
    assert validate_records(records).success


def test_several_invisible_prompts_are_not_collapsed_into_one(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, *({"prompt": p, "strong": 1, "weak": 0} for p in INVISIBLE.values())]
    records, summary = ingest_sources([_source(_jsonl(tmp_path / "p.jsonl", rows))])
    assert summary.sources["custom"].near_duplicates_collapsed == 0
    assert [p[1] for p in _validation_error(records).problems] == [4, 5, 6, 7, 8]


# --- the same prompt in two sources, or equal after normalisation, with other outcomes --------


def test_the_same_prompt_in_two_sources_with_opposite_outcomes_is_an_error(tmp_path: Path) -> None:
    a = _jsonl(tmp_path / "a.jsonl", GOOD_ROWS)
    b = _jsonl(tmp_path / "b.jsonl", [{"prompt": "Name a prime number.", "strong": 0, "weak": 1}])
    records, _ = ingest_sources([_source(a, "a"), _source(b, "b")])
    problems = _validation_error(records).problems
    assert [(p[0], p[1], p[2]) for p in problems] == [(str(a), 3, "prompt"), (str(b), 1, "prompt")]
    assert f"reads the same as the prompt of {b} row 1 (source 'b')" in problems[0][3]
    assert "(strong 1, weak 0) vs (strong 0, weak 1)" in problems[0][3]


def test_the_same_prompt_in_two_sources_with_equal_outcomes_passes(tmp_path: Path) -> None:
    a = _jsonl(tmp_path / "a.jsonl", GOOD_ROWS)
    b = _jsonl(tmp_path / "b.jsonl", [{"prompt": "Name a prime number.", "strong": 1, "weak": 0}])
    assert validate_records(ingest_sources([_source(a, "a"), _source(b, "b")])[0]).success


TWIN = "\uff2e\uff41\uff4d\uff45  a prime\u200b number.\n"  # full-width "Name", doubled space, ZWSP


def test_prompts_equal_after_normalisation_are_collapsed_or_reported(tmp_path: Path) -> None:
    same = _jsonl(tmp_path / "same.jsonl", [*GOOD_ROWS, {"prompt": TWIN, "strong": 1, "weak": 0}])
    records, summary = ingest_sources([_source(same)])
    assert len(records) == 3 and TWIN not in records.prompts
    counts = summary.sources["custom"]
    assert (counts.duplicates_collapsed, counts.near_duplicates_collapsed) == (0, 1)

    other = _jsonl(tmp_path / "other.jsonl", [*GOOD_ROWS, {"prompt": TWIN, "strong": 0, "weak": 0}])
    kept, _ = ingest_sources([_source(other)])
    problems = _validation_error(kept).problems
    assert [(p[1], p[2]) for p in problems] == [(3, "prompt"), (4, "prompt")]
    assert "after Unicode and whitespace normalisation" in problems[0][3]

    dropped, summary = ingest_sources([SourceConfig.from_dict({**_source(other).to_dict(), "conflicting_duplicates": "drop"})])
    assert summary.sources["custom"].conflicting_dropped == 2 and len(dropped) == 2
    assert validate_records(dropped).success


# --- quality cells: normalised with a warning, or an error ------------------------------------


def test_padded_and_full_width_quality_cells_are_read_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _csv(tmp_path / "q.csv", 'a,1,0\nb," TRUE ",false\nc,\uff11,\uff10.\uff15\nd,True,False\n')
    with caplog.at_level(logging.WARNING, logger="ragrouter.data.ingest"):
        records, summary = ingest_sources([_source(path)])
    assert records.frame["strong_quality"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert records.frame["weak_quality"].tolist() == [0.0, 0.0, 0.5, 0.0]
    assert summary.sources["custom"].values_normalised == 3
    assert f"{path}: 3 quality value(s) read after trimming or Unicode (NFKC) normalisation" in caplog.text
    assert "row 2, field 'strong': ' TRUE '" in caplog.text


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("0_1", "Python's float() reads it as 1.0"),
        ("\u0661", "an Arabic-Indic 1: not ASCII after NFKC"),
        ("1,5", "a decimal comma"),
        ("inf", "not a number a quality can be"),
        ("yes", "not a boolean spelling"),
    ],
)
def test_ambiguous_quality_cells_are_errors(tmp_path: Path, cell: str, why: str) -> None:
    path = _csv(tmp_path / "q.csv", f'a,1,0\nb,"{cell}",0\n')
    assert [p[:3] for p in _ingest_error(_source(path)).problems] == [(str(path), 2, "strong")], why


def test_an_integer_too_large_for_a_float_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"prompt": "a", "strong": 1, "weak": 0}\n{"prompt": "b", "strong": 1' + "0" * 400 + ', "weak": 0}\n')
    (problem,) = _ingest_error(_source(path)).problems
    assert problem[:3] == (str(path), 2, "strong") and problem[3].startswith("integer too large for a float")
    csv = _csv(tmp_path / "q.csv", "a,1,0\nb,1" + "0" * 400 + ",0\n")
    (problem,) = _ingest_error(_source(csv)).problems
    assert problem[:3] == (str(csv), 2, "strong") and problem[3].startswith("number too large for a float")


def test_a_lone_surrogate_is_an_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "q.jsonl", [*GOOD_ROWS, {"prompt": "broken \ud800 text", "strong": 1, "weak": 0}])
    (problem,) = _ingest_error(_source(path)).problems
    assert problem[:3] == (str(path), 4, "prompt")
    assert problem[3].startswith("not valid Unicode: lone surrogate U+D800 at character 8")


# --- the config and the models --------------------------------------------------------------


def test_strong_and_weak_from_the_same_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="strong_column and weak_column are both 'ok'"):
        SourceConfig.from_dict({"name": "x", "kind": "table", "path": "x.csv", "strong_column": "ok", "weak_column": "ok"})
    with pytest.raises(ValueError, match="both 'gpt-4-1106-preview'"):
        SourceConfig.from_dict({"name": "x", "kind": "routellm_gsm8k", "path": "g.csv", "weak_column": "gpt-4-1106-preview"})


def test_a_strong_model_not_better_on_average_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    frame = _frame([("q1", 0.0, 1.0), ("q2", 1.0, 1.0), ("q3", 0.5, 0.0)])
    with caplog.at_level(logging.WARNING, logger="ragrouter.data.validate"):
        report = validate_records(RoutingRecords(frame))
    assert report.success
    (warning,) = report.warnings
    assert warning.startswith("source 'custom': the strong model is not better than the weak one on average")
    assert "(mean quality 0.5000 vs 0.6667 over 3 records)" in warning
    assert warning in caplog.text and "warning: source 'custom'" in report.to_markdown()
    better = _frame([("q1", 1.0, 0.0), ("q2", 1.0, 1.0)])
    assert validate_records(RoutingRecords(better)).warnings == []


def _frame(rows: list[tuple[str, float, float]]):
    import pandas as pd

    from ragrouter.data.records import record_id

    frame = pd.DataFrame(rows, columns=["prompt", "strong_quality", "weak_quality"])
    frame["id"] = [record_id("custom", p) for p in frame["prompt"]]
    frame["source"] = frame["group"] = "custom"
    frame["label_kind"], frame["origin_file"], frame["origin_row"] = "golden", "custom.csv", range(1, len(frame) + 1)
    return frame
