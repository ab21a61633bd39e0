"""The `hf_dataset` source, offline: datasets the test builds and saves with `datasets` itself.

The hub path (a name at a pinned revision) is exercised only as far as it can be without a
network: a missing revision is refused, and an unreachable hub is a clear error.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from ragrouter.data.ingest import ingest_sources
from ragrouter.data.sources import SourceConfig
from ragrouter.errors import DataValidationError

# Shaped like routellm/gpt4_judge_battles: a prompt and both models' outcomes, plus noise.
ROWS = {
    "prompt": ["What is 2+2?", "Capital of France?", "Explain recursion.", "Name a prime number.", "Sort [3, 1, 2]."],
    "gpt4_wins": [1.0, 1.0, 0.75, 1.0, 0.0],
    "mixtral_wins": [0.0, 1.0, 0.5, 0.0, 1.0],
    "topic": ["math", "geo", "cs", "math", "cs"],
    "turn_count": [1, 1, 2, 1, 1],
}


def _source(path: str, **overrides: object) -> SourceConfig:
    columns = {"strong_column": "gpt4_wins", "weak_column": "mixtral_wins", "group_column": "topic"}
    return SourceConfig.from_dict({"name": "battles", "kind": "hf_dataset", "path": path, **columns, **overrides})


def _read(path: str, **overrides: object):
    records, summary = ingest_sources([_source(path, **overrides)])
    return records.frame, summary.sources["battles"]


def _expect_rows(frame, rows=range(5)) -> None:
    assert frame["prompt"].tolist() == [ROWS["prompt"][i] for i in rows]
    assert frame["strong_quality"].tolist() == [ROWS["gpt4_wins"][i] for i in rows]
    assert frame["weak_quality"].tolist() == [ROWS["mixtral_wins"][i] for i in rows]
    assert frame["group"].tolist() == [ROWS["topic"][i] for i in rows]
    assert set(frame["source"]) == {"battles"} and set(frame["label_kind"]) == {"golden"}


def test_a_saved_dataset(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "saved"))
    frame, counts = _read(str(tmp_path / "saved"))
    _expect_rows(frame)
    assert set(frame["origin_file"]) == {str(tmp_path / "saved")}
    assert frame["origin_row"].tolist() == [1, 2, 3, 4, 5] and counts.kept == 5


def test_a_saved_dataset_dict_reads_its_split(tmp_path: Path) -> None:
    full = datasets.Dataset.from_dict(ROWS)
    datasets.DatasetDict({"train": full.select(range(3)), "test": full.select(range(3, 5))}).save_to_disk(str(tmp_path / "dict"))
    frame, _ = _read(str(tmp_path / "dict"), split="test")
    _expect_rows(frame, rows=[3, 4])
    assert set(frame["origin_file"]) == {f"{tmp_path / 'dict'}[test]"}
    with pytest.raises(DataValidationError) as info:
        _read(str(tmp_path / "dict"), split="validation")
    assert info.value.problems == [(str(tmp_path / "dict"), None, "split", "no split 'validation'; splits found: ['test', 'train']")]


def test_parquet_shards_name_their_own_rows(tmp_path: Path) -> None:
    full = datasets.Dataset.from_dict(ROWS)
    (tmp_path / "data").mkdir()
    full.select(range(2)).to_parquet(str(tmp_path / "data" / "train-00000-of-00002.parquet"))
    full.select(range(2, 5)).to_parquet(str(tmp_path / "data" / "train-00001-of-00002.parquet"))
    for path in (str(tmp_path / "data"), str(tmp_path / "data" / "train-*.parquet")):
        frame, _ = _read(path)
        _expect_rows(frame)
        assert [Path(f).name[:11] for f in frame["origin_file"]] == ["train-00000"] * 2 + ["train-00001"] * 3
        assert frame["origin_row"].tolist() == [1, 2, 1, 2, 3]
    frame, _ = _read(str(tmp_path / "data" / "train-00001-of-00002.parquet"))
    _expect_rows(frame, rows=[2, 3, 4])


def test_a_bad_value_is_named_by_shard_row_and_column(tmp_path: Path) -> None:
    spoiled = {**ROWS, "mixtral_wins": ["0", "1", "half", "0", "1"]}
    path = tmp_path / "battles.parquet"
    datasets.Dataset.from_dict(spoiled).to_parquet(str(path))
    with pytest.raises(DataValidationError) as info:
        _read(str(path))
    (problem,) = info.value.problems
    assert problem[:3] == (str(path), 3, "mixtral_wins") and "'half'" in problem[3]


def test_a_missing_column_lists_the_columns_found(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataValidationError, match=r"column 'question' not found; columns found: \['prompt', 'gpt4_wins'"):
        _read(str(tmp_path / "saved"), prompt_column="question")


def test_a_hub_dataset_needs_a_pinned_revision_and_says_when_the_hub_is_unreachable() -> None:
    with pytest.raises(DataValidationError) as info:
        _read("routellm/gpt4_judge_battles")
    assert info.value.problems[0][:3] == ("routellm/gpt4_judge_battles", None, "revision")
    # conftest.py sets HF_HUB_OFFLINE=1, as the project's machines have no route to the hub
    with pytest.raises(DataValidationError) as info:
        _read("routellm/gpt4_judge_battles", revision="0123456789abcdef0123456789abcdef01234567")
    (problem,) = info.value.problems
    assert problem[0] == "routellm/gpt4_judge_battles@0123456789abcdef0123456789abcdef01234567[train]"
    assert problem[3].startswith("cannot load from the Hugging Face hub:")


def test_a_folder_that_is_no_dataset_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataValidationError) as info:
        _read(str(tmp_path))
    assert info.value.problems == [(str(tmp_path), None, None, "neither a save_to_disk folder nor Parquet files")]


def test_a_changed_shard_changes_the_fingerprint_of_a_glob(tmp_path: Path) -> None:
    from ragrouter.data.fingerprint import fingerprint_sources

    full = datasets.Dataset.from_dict(ROWS)
    full.select(range(2)).to_parquet(str(tmp_path / "train-0.parquet"))
    source = _source(str(tmp_path / "train-*.parquet")).to_dict()
    before = fingerprint_sources([source])
    assert fingerprint_sources([source]) == before
    full.select(range(3)).to_parquet(str(tmp_path / "train-0.parquet"))
    assert fingerprint_sources([source]) != before
