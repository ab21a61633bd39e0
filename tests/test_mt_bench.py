"""The `mt_bench` source: RouteLLM's MT-Bench questions and GPT-4 judgements as routing records."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ragrouter.data.ingest import ingest_sources
from ragrouter.data.sources import ROUTELLM_STRONG, ROUTELLM_WEAK, SourceConfig
from ragrouter.data.validate import validate_records
from ragrouter.errors import DataValidationError


def _source(path: Path, **overrides: object) -> SourceConfig:
    return SourceConfig.from_dict({"name": "mt_bench", "kind": "mt_bench", "path": str(path), **overrides})


@pytest.fixture(scope="module")
def mt_bench_dir(routellm_data: Path) -> Path:
    return routellm_data / "mt_bench"


def test_defaults_are_routellm_s_pair_judge_labels_and_categories(mt_bench_dir: Path) -> None:
    cfg = _source(mt_bench_dir)
    assert (cfg.strong_column, cfg.weak_column, cfg.label_kind, cfg.group_column) == (ROUTELLM_STRONG, ROUTELLM_WEAK, "judge", "category")
    assert cfg.contaminated_file() == mt_bench_dir / "contaminated_prompts.jsonl"
    assert SourceConfig.from_dict(cfg.to_dict()) == cfg


def test_one_record_per_question_and_turn_with_the_judge_score_over_ten(mt_bench_dir: Path) -> None:
    records, summary = ingest_sources([_source(mt_bench_dir)])
    frame = records.frame
    questions = pd.read_json(mt_bench_dir / "question.jsonl", lines=True)
    judgements = pd.read_json(mt_bench_dir / "judgements.jsonl", lines=True)
    contaminated = set(pd.read_json(mt_bench_dir / "contaminated_prompts.jsonl", lines=True)["eval_prompt"])
    kept = questions[~questions["turns"].map(lambda t: bool(set(t) & contaminated))]
    # 80 questions, 8 of them contaminated (RouteLLM drops the question whole): 72 x 2 turns
    assert (len(questions), len(kept)) == (80, 72)
    counts = summary.sources["mt_bench"]
    assert (counts.read, counts.contaminated_dropped, counts.kept) == (160, 16, 144)
    assert set(frame["label_kind"]) == {"judge"} and frame["id"].is_unique
    assert frame.groupby("group").size().to_dict() == (kept["category"].value_counts() * 2).to_dict()

    score = judgements.set_index(["question_id", "model", "turn"])["score"]
    line_of = {qid: i + 1 for i, qid in enumerate(questions["question_id"])}
    expected = []
    for q in kept.itertuples():
        for turn, prompt in ((1, q.turns[0]), (2, q.turns[0] + "\n\n" + q.turns[1])):
            expected.append((prompt, score[(q.question_id, ROUTELLM_STRONG, turn)] / 10, score[(q.question_id, ROUTELLM_WEAK, turn)] / 10, q.category, line_of[q.question_id]))
    got = list(frame[["prompt", "strong_quality", "weak_quality", "group", "origin_row"]].itertuples(index=False, name=None))
    assert sorted(got) == sorted(expected)
    assert set(frame["origin_file"]) == {str(mt_bench_dir / "question.jsonl")}
    # GPT-4 grades its own answers higher on average: 0.921 vs 0.828 on the 144 records kept
    assert frame["strong_quality"].mean() == pytest.approx(0.9212, abs=5e-5)
    assert frame["weak_quality"].mean() == pytest.approx(0.8281, abs=5e-5)
    assert validate_records(records).success


@pytest.fixture
def crafted(mt_bench_dir: Path, tmp_path: Path) -> Path:
    """A copy of MT-Bench's first 3 questions and their judgements, to break."""
    folder = tmp_path / "mt_bench"
    folder.mkdir()
    lines = (mt_bench_dir / "question.jsonl").read_text().splitlines()[:3]
    (folder / "question.jsonl").write_text("\n".join(lines) + "\n")
    ids = {json.loads(line)["question_id"] for line in lines}
    judged = [line for line in (mt_bench_dir / "judgements.jsonl").read_text().splitlines() if json.loads(line)["question_id"] in ids]
    (folder / "judgements.jsonl").write_text("\n".join(judged) + "\n")
    return folder


def _rewrite_judgements(folder: Path, change) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "judgements.jsonl").read_text().splitlines()]
    rows = change(rows)
    (folder / "judgements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _problems(folder: Path, **overrides: object) -> list[tuple]:
    with pytest.raises(DataValidationError) as info:
        ingest_sources([_source(folder, **overrides)])
    return info.value.problems


def test_crafted_copy_reads_without_a_contamination_list(crafted: Path, caplog: pytest.LogCaptureFixture) -> None:
    records, _ = ingest_sources([_source(crafted)])
    assert len(records) == 6 and "no contamination list" in caplog.text


def test_a_missing_judgement_names_the_question_line_and_turn(crafted: Path) -> None:
    _rewrite_judgements(crafted, lambda rows: [r for r in rows if not (r["model"] == ROUTELLM_WEAK and r["turn"] == 2)])
    qid = json.loads((crafted / "question.jsonl").read_text().splitlines()[1])["question_id"]
    problems = _problems(crafted)
    assert (str(crafted / "question.jsonl"), 2, "turns", f"no judgement of {ROUTELLM_WEAK!r} for turn 2 of question {qid}") in problems


@pytest.mark.parametrize(("score", "why"), [(-1, "the judge gave no grade"), ("ten", "text"), (11, "above 10"), (None, "missing")])
def test_an_unusable_score_names_the_judgement_line(crafted: Path, score: object, why: str) -> None:
    def spoil(rows):
        rows[4]["score"] = score
        return rows

    _rewrite_judgements(crafted, spoil)
    problems = _problems(crafted)
    assert [p[:3] for p in problems] == [(str(crafted / "judgements.jsonl"), 5, "score")], why


def test_a_second_judgement_and_an_absent_model_are_errors(crafted: Path) -> None:
    rows = _rewrite_judgements(crafted, lambda rows: rows + [rows[0]])
    (problem,) = _problems(crafted)
    assert problem[:2] == (str(crafted / "judgements.jsonl"), len(rows)) and "a second judgement" in problem[3] and "first on line 1" in problem[3]

    (problem,) = _problems(crafted, weak_column="claude-2")
    assert problem[2] == "model" and "no judgements of 'claude-2'; models judged: ['gpt-4-1106-preview', 'mistralai/Mixtral-8x7B-Instruct-v0.1']" in problem[3]


def test_a_question_without_two_turns_is_an_error(crafted: Path) -> None:
    lines = (crafted / "question.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["turns"] = first["turns"][:1]
    (crafted / "question.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    (problem,) = _problems(crafted)
    assert problem[:3] == (str(crafted / "question.jsonl"), 1, "turns") and "expected a list of 2 texts" in problem[3]
