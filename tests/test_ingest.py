"""Ingestion: the real RouteLLM files, the three table formats, and every bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ragrouter.data.ingest import IngestSummary, ingest_sources, read_source
from ragrouter.data.records import RECORD_COLUMNS, RoutingRecords, record_id
from ragrouter.data.sources import ROUTELLM_STRONG, ROUTELLM_WEAK, SourceConfig
from ragrouter.data.validate import validate_records
from ragrouter.errors import DataValidationError

ROUTELLM = Path("/work/shared/data/routellm")
MMLU_DIR = ROUTELLM / "mmlu"
GSM8K_CSV = ROUTELLM / "gsm8k" / "gsm8k_responses.csv"
needs_data = pytest.mark.skipif(not MMLU_DIR.is_dir(), reason="RouteLLM data not present")


def _mmlu(**overrides: object) -> SourceConfig:
    return SourceConfig.from_dict(
        {"name": "mmlu", "kind": "routellm_mmlu", "path": str(MMLU_DIR), **overrides}
    )


def _gsm8k(**overrides: object) -> SourceConfig:
    return SourceConfig.from_dict(
        {"name": "gsm8k", "kind": "routellm_gsm8k", "path": str(GSM8K_CSV), **overrides}
    )


def _table(path: Path, **overrides: object) -> SourceConfig:
    columns = {"strong_column": "strong", "weak_column": "weak"}
    return SourceConfig.from_dict(
        {"name": "custom", "kind": "table", "path": str(path), **columns, **overrides}
    )


def _error(cfg: SourceConfig) -> str:
    with pytest.raises(DataValidationError) as info:
        ingest_sources([cfg])
    return str(info.value)


@pytest.fixture(scope="module")
def real() -> tuple[RoutingRecords, IngestSummary]:
    """All of MMLU and GSM8K, read once for this module, as the training pipeline reads them."""
    return ingest_sources([_mmlu(conflicting_duplicates="drop"), _gsm8k()])


# --- the real RouteLLM data -------------------------------------------------------------------


@needs_data
def test_real_counts_match_the_data_readme(real: tuple[RoutingRecords, IngestSummary]) -> None:
    records, summary = real
    mmlu, gsm8k = summary.sources["mmlu"], summary.sources["gsm8k"]
    # README: 14,042 MMLU rows, 14,037 after contamination; GSM8K 1,319 and 1,307.
    assert (mmlu.read, mmlu.contaminated_dropped) == (14_042, 5)
    assert (gsm8k.read, gsm8k.contaminated_dropped, gsm8k.kept) == (1_319, 12, 1_307)
    # 105 MMLU prompts appear twice: 101 with the same outcomes, 4 with different ones.
    assert (mmlu.duplicates_collapsed, mmlu.conflicting_dropped, mmlu.kept) == (101, 8, 13_928)
    assert records.counts_by_source() == {"gsm8k": 1_307, "mmlu": 13_928}
    assert summary.kept == len(records)


@needs_data
def test_real_records_are_well_formed(real: tuple[RoutingRecords, IngestSummary]) -> None:
    frame = real[0].frame
    assert list(frame.columns) == list(RECORD_COLUMNS)
    assert frame.loc[frame["source"] == "mmlu", "group"].nunique() == 57
    assert set(frame.loc[frame["source"] == "gsm8k", "group"]) == {"gsm8k"}
    assert frame["id"].is_unique
    contaminated = {
        json.loads(line)["eval_prompt"]
        for sub in ("mmlu", "gsm8k")
        for line in (ROUTELLM / sub / "contaminated_prompts.jsonl").read_text().splitlines()
    }
    assert not frame["prompt"].isin(contaminated).any()
    gsm8k = frame[frame["source"] == "gsm8k"]
    # README: GSM8K strong 85.77%, weak 63.73% correct (no duplicates there, so exact).
    assert gsm8k["strong_quality"].mean() == pytest.approx(0.8577, abs=5e-5)
    assert gsm8k["weak_quality"].mean() == pytest.approx(0.6373, abs=5e-5)


@needs_data
def test_origin_names_the_source_file_and_row(real: tuple[RoutingRecords, IngestSummary]) -> None:
    frame = real[0].frame
    for _, rec in frame.sample(20, random_state=0).iterrows():
        source = pd.read_csv(rec["origin_file"])
        raw = source.iloc[rec["origin_row"] - 1]
        assert raw["prompt"] == rec["prompt"]
        assert float(raw[ROUTELLM_STRONG]) == rec["strong_quality"]
        assert float(raw[ROUTELLM_WEAK]) == rec["weak_quality"]
        assert rec["id"] == record_id(rec["source"], rec["prompt"])


@needs_data
def test_real_records_pass_validation(real: tuple[RoutingRecords, IngestSummary]) -> None:
    report = validate_records(real[0])
    assert report.success, report.to_markdown()
    assert report.n_rows == 15_235


@needs_data
def test_conflicting_real_prompts_are_kept_for_validation_or_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The 4 conflicting MMLU prompts sit in these two subjects (each in both).
    for subject in ("clinical_knowledge", "college_medicine"):
        shutil.copy(MMLU_DIR / f"mmlu_{subject}.csv", tmp_path)
    cfg = _mmlu(path=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="ragrouter.data.ingest"):
        kept, summary = ingest_sources([cfg])
    assert "no contamination list" in caplog.text and "different outcomes" in caplog.text
    assert summary.sources["mmlu"].conflicting_dropped == 0
    problems = validate_records(kept).problems
    assert len(problems) == 8 and {p[2] for p in problems} == {"id"}
    files = {Path(p[0]).name for p in problems}
    assert files == {"mmlu_clinical_knowledge.csv", "mmlu_college_medicine.csv"}

    cfg.conflicting_duplicates = "drop"
    dropped, summary = ingest_sources([cfg])
    assert summary.sources["mmlu"].conflicting_dropped == 8
    assert len(dropped) == len(kept) - 8 and dropped.frame["id"].is_unique


@needs_data
def test_sample_fraction_is_a_deterministic_subset() -> None:
    full = set(read_source(_gsm8k())["prompt"])
    first, summary = ingest_sources([_gsm8k(sample_fraction=0.2)])
    again, _ = ingest_sources([_gsm8k(sample_fraction=0.2)])
    counts = summary.sources["gsm8k"]
    assert first.frame["id"].tolist() == again.frame["id"].tolist()
    assert set(first.prompts) <= full
    assert counts.kept + counts.sampled_out == 1_307
    assert 0.15 < counts.kept / 1_307 < 0.25


# --- table sources ----------------------------------------------------------------------------

ROWS = [
    {"question": "What is 2+2?", "strong": True, "weak": False, "topic": "math"},
    {"question": "Capital of France?", "strong": "True", "weak": "False", "topic": "geo"},
    {"question": "Summarise this\nmulti-line text.", "strong": 0.75, "weak": 0.5, "topic": "nlp"},
    {"question": "What is 2+2?", "strong": 1, "weak": 0, "topic": "math"},  # identical: collapsed
]


def _write(path: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":  # typed columns: floats, not the mixed spellings above
        as_numbers = {"True": 1, "False": 0}
        frame["strong"] = pd.to_numeric(frame["strong"].replace(as_numbers))
        frame["weak"] = pd.to_numeric(frame["weak"].replace(as_numbers))
        frame.to_parquet(path)
    else:  # JSONL with a blank line, so that row numbers must follow lines
        lines = [json.dumps(r) for r in rows]
        path.write_text("\n".join(lines[:1] + [""] + lines[1:]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_table_source_in_each_format(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"custom{suffix}", ROWS)
    cfg = _table(path, prompt_column="question", group_column="topic")
    records, summary = ingest_sources([cfg])
    frame = records.frame
    assert frame["prompt"].tolist() == [r["question"] for r in ROWS[:3]]
    assert frame["strong_quality"].tolist() == [1.0, 1.0, 0.75]
    assert frame["weak_quality"].tolist() == [0.0, 0.0, 0.5]
    assert frame["group"].tolist() == ["math", "geo", "nlp"]
    assert set(frame["origin_file"]) == {str(path)}
    assert frame["origin_row"].tolist() == ([1, 3, 4] if suffix == ".jsonl" else [1, 2, 3])
    assert summary.sources["custom"].duplicates_collapsed == 1


def test_group_defaults_to_the_source_name_and_label_kind_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", [{"prompt": "q", "strong": 0.8, "weak": 0.3}])
    frame = read_source(_table(path, name="mt_bench", label_kind="judge"))
    assert frame.loc[0, ["source", "group", "label_kind"]].tolist() == [
        "mt_bench",
        "mt_bench",
        "judge",
    ]


def test_out_of_contract_values_are_left_for_validation(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('prompt,strong,weak\n"",1.7,\n   ,NA,0\nNA,0,1\n', encoding="utf-8")
    frame = read_source(_table(path))
    assert frame["prompt"].tolist() == ["", "   ", "NA"]  # "NA" is a prompt, not a null
    assert frame["strong_quality"].iloc[0] == 1.7
    assert frame["weak_quality"].isna().tolist() == [True, False, False]
    assert frame["strong_quality"].isna().tolist() == [False, True, False]


def test_explicit_contamination_list_drops_its_prompts(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ROWS[:3])
    listed = tmp_path / "contaminated.jsonl"
    listed.write_text(json.dumps({"eval_prompt": "Capital of France?"}) + "\n", encoding="utf-8")
    cfg = _table(path, prompt_column="question", contaminated_path=str(listed))
    records, summary = ingest_sources([cfg])
    assert "Capital of France?" not in records.prompts
    assert summary.sources["custom"].contaminated_dropped == 1


# --- configs ----------------------------------------------------------------------------------


def test_source_config_round_trips_and_fills_routellm_defaults() -> None:
    cfg = _gsm8k(sample_fraction=0.5)
    assert SourceConfig.from_dict(cfg.to_dict()) == cfg
    assert (cfg.strong_column, cfg.weak_column) == (ROUTELLM_STRONG, ROUTELLM_WEAK)
    assert cfg.contaminated_file() == GSM8K_CSV.parent / "contaminated_prompts.jsonl"
    assert _mmlu().contaminated_file() == MMLU_DIR / "contaminated_prompts.jsonl"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"kind": "table", "strong_col": "s"}, "strong_col: unknown key; did you mean strong_column?"),
        ({"kind": "excel"}, "kind: must be one of routellm_mmlu, routellm_gsm8k, mt_bench, table, folder, hf_dataset; got str 'excel'"),
        ({"kind": "table"}, "needs strong_column and weak_column"),
        ({"kind": "hf_dataset", "strong_column": "s"}, "needs strong_column and weak_column"),
        ({"kind": "table", "strong_column": "ok", "weak_column": "ok"}, "strong_column and weak_column are both 'ok'"),
        ({"label_kind": "vibes"}, "'label_kind' must be one of"),
        ({"sample_fraction": 0}, "sample_fraction must be in (0, 1]"),
        ({"name": None}, "name: required"),  # None: leave the key out
    ],
)
def test_bad_source_config_is_rejected_clearly(data: dict, expected: str) -> None:
    base = {"name": "x", "kind": "routellm_gsm8k", "path": "g.csv"}
    merged = {k: v for k, v in {**base, **data}.items() if v is not None}
    with pytest.raises(ValueError) as info:
        SourceConfig.from_dict(merged)
    assert expected in str(info.value)


# --- bad input files --------------------------------------------------------------------------


def test_missing_column_is_named_with_the_columns_found(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", [{"prompt": "q", "strong": 1}])
    message = _error(_table(path))
    found = "columns found: ['prompt', 'strong']"
    assert f"{path}, field 'weak': column 'weak' not found; {found}" in message


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_wrong_type_names_file_row_and_field(tmp_path: Path, suffix: str) -> None:
    rows = [{"prompt": "a", "strong": 1, "weak": 0}, {"prompt": "b", "strong": 1, "weak": "abc"}]
    path = _write(tmp_path / f"t{suffix}", rows)
    row = 3 if suffix == ".jsonl" else 2  # JSONL rows are lines (a blank line precedes it)
    expected = "expected a boolean (True/False) or a number, got 'abc'"
    assert f"{path}, row {row}, field 'weak': {expected}" in _error(_table(path))


def test_non_text_prompt_is_a_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": 42, "strong": 1, "weak": 0}\n', encoding="utf-8")
    assert f"{path}, row 1, field 'prompt': expected text, got 42" in _error(_table(path))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "file is empty (0 bytes)"),
        (b"prompt,strong,weak\n", "file has no data rows"),
    ],
)
def test_empty_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    assert f"{path}: {expected}" in _error(_table(path))


def test_non_utf8_csv_names_the_data_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    # The first prompt spans two lines, so the bad byte is on line 4 but in data row 2.
    path.write_bytes(b'prompt,strong,weak\n"two\nlines",1,0\ncaf\xe9,1,0\n')
    assert f"{path}, row 2: not valid UTF-8: byte 0xe9 on line 4" in _error(_table(path))


def test_non_utf8_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"prompt": "a", "strong": 1, "weak": 0}\n{"prompt": "caf\xe9"}\n')
    assert f"{path}, row 2: not valid UTF-8: byte 0xe9 on line 2" in _error(_table(path))


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "a", "strong": 1, "weak": 0}\n{"prompt": "b",\n', encoding="utf-8")
    assert f"{path}, row 2: invalid JSON" in _error(_table(path))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("t.xlsx", b"x", "unknown file format '.xlsx'"),
        ("absent.csv", None, "file not found"),
        ("t.parquet", b"not parquet at all", "cannot read as Parquet"),
    ],
)
def test_unreadable_file(tmp_path: Path, name: str, content: bytes | None, expected: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert f"{path}: {expected}" in _error(_table(path))


def test_missing_mmlu_directory_and_contamination_list(tmp_path: Path) -> None:
    absent = tmp_path / "nope"
    assert f"{absent}: MMLU directory not found" in _error(_mmlu(path=str(absent)))
    path = _write(tmp_path / "t.csv", ROWS[:1])
    listed = tmp_path / "absent.jsonl"
    message = _error(_table(path, prompt_column="question", contaminated_path=str(listed)))
    assert f"{listed}: file not found" in message


def test_duplicate_source_names_are_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ROWS[:1])
    with pytest.raises(ValueError, match="source names must be unique"):
        ingest_sources([_table(path), _table(path)])
