"""Feedback: the three forms an outcome comes in, and the logs that keep outcomes (a JSONL file
shared by processes, a PostgreSQL table shared by replicas), read back by a training run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import PROJECT_ROOT
from ragrouter.data.ingest import ingest_sources
from ragrouter.data.sources import SourceConfig
from ragrouter.serving.feedback import (
    JsonlFeedbackStore,
    Outcome,
    PostgresFeedbackStore,
    export_feedback,
    open_feedback_store,
    outcome_from_feedback,
)

MEANS = {"strong": 0.8, "weak": 0.6}


def _outcome(prompt: str, strong: float = 1.0, weak: float = 0.0, at: float = 1.0) -> Outcome:
    return Outcome(prompt, strong, weak, "both", at)


def test_feedback_comes_as_both_qualities_one_models_quality_or_a_judges_winner():
    both = outcome_from_feedback("q", strong_quality=True, weak_quality=0.25, quality_means=None, now=5.0)
    assert both == Outcome("q", 1.0, 0.25, "both", 5.0) and both.gain == 0.75
    # one model answered: the other's quality is its mean on the training data
    strong = outcome_from_feedback("q", model="strong", quality=0, quality_means=MEANS, now=5.0)
    assert (strong.strong_quality, strong.weak_quality, strong.observed) == (0.0, 0.6, "strong") and strong.gain == pytest.approx(-0.6)
    weak = outcome_from_feedback("q", model="weak", quality=1.0, quality_means=MEANS, now=5.0)
    assert (weak.strong_quality, weak.weak_quality, weak.observed) == (0.8, 1.0, "weak")
    judged = {w: outcome_from_feedback("q", winner=w, quality_means=MEANS, now=5.0) for w in ("strong", "weak", "tie")}
    assert {w: (o.strong_quality, o.weak_quality) for w, o in judged.items()} == {"strong": (1.0, 0.0), "weak": (0.0, 1.0), "tie": (0.5, 0.5)}
    assert {o.observed for o in judged.values()} == {"judge"}
    before = time.time()
    assert before <= outcome_from_feedback("q", winner="tie", quality_means=None).created_at <= time.time()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "strong", "quality": 1.5}, r"^quality: must be a number in \[0, 1\], got 1.5$"),
        ({"strong_quality": float("nan"), "weak_quality": 0.0}, r"^strong_quality: must be a number in \[0, 1\], got nan$"),
        ({"strong_quality": 1.0, "weak_quality": "0"}, r"^weak_quality: must be a number in \[0, 1\], got '0'$"),
        ({"strong_quality": 1.0}, r"^weak_quality: needed with strong_quality"),
        ({"quality": 1.0}, r"^model: needed with quality"),
        ({"model": "strong"}, r"^quality: needed with model 'strong'"),
        ({"model": "medium", "quality": 1.0}, r"^model: must be 'strong' or 'weak'"),
        ({"winner": "draw"}, r"^winner: must be one of strong, weak, tie, got 'draw'$"),
        ({"strong_quality": 1.0, "weak_quality": 0.0, "winner": "tie"}, r"^feedback: give exactly one of .*; got strong_quality, weak_quality, winner$"),
        ({}, r"^feedback: give exactly one of .*; got none of them$"),
    ],
)
def test_bad_feedback_is_refused_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        outcome_from_feedback("q", quality_means=MEANS, **fields)


def test_one_models_quality_is_refused_without_the_training_means_and_prompts_must_be_text():
    with pytest.raises(ValueError, match=r"^model: one model's quality needs the other model's mean quality .*quality_means"):
        outcome_from_feedback("q", model="weak", quality=1.0, quality_means=None)
    with pytest.raises(ValueError, match=r"^quality_means.weak: must be a number in \[0, 1\], got None$"):
        outcome_from_feedback("q", model="strong", quality=1.0, quality_means={"strong": 0.8})
    for prompt in ("", "  \n", None, 3):
        with pytest.raises(ValueError, match=r"^prompt: must be a non-empty string"):
            outcome_from_feedback(prompt, winner="tie", quality_means=None)
    with pytest.raises(ValueError, match=r"^observed: must be one of both, strong, weak, judge"):
        Outcome("q", 1.0, 0.0, "guess", 1.0)


def test_two_stores_on_one_jsonl_file_see_each_others_appends_from_their_cursors(tmp_path):
    path = tmp_path / "logs" / "feedback.jsonl"
    writer, reader = JsonlFeedbackStore(path), open_feedback_store(str(path))
    assert isinstance(reader, JsonlFeedbackStore) and reader.read_since(0) == ([], 0)
    first = [_outcome("what is 2+2?", at=1.0), _outcome("prove it\nline two — ü", 0.5, 0.5, at=2.0)]
    writer.append(first)
    seen, cursor = reader.read_since(0)
    assert seen == first and cursor == path.stat().st_size
    reader.append([_outcome("third", 0.0, 1.0, at=3.0)])
    assert writer.read_since(cursor) == ([_outcome("third", 0.0, 1.0, at=3.0)], path.stat().st_size)
    assert reader.read_since(path.stat().st_size) == ([], path.stat().st_size)
    with pytest.raises(ValueError, match="cursor: .* is past the end"):
        reader.read_since(path.stat().st_size + 1)
    with pytest.raises(ValueError, match=r"^path: a feedback log is a \.jsonl file"):
        JsonlFeedbackStore(tmp_path / "feedback.csv")


def test_a_line_still_being_written_is_not_read_and_a_torn_one_is_cut_by_the_next_append(tmp_path):
    path = tmp_path / "feedback.jsonl"
    store = JsonlFeedbackStore(path)
    store.append([_outcome("whole")])
    size = path.stat().st_size
    with open(path, "ab") as log:
        log.write(b'{"prompt": "half writ')  # a writer mid-write (or one that died there)
    assert store.read_since(0) == ([_outcome("whole")], size)
    store.append([_outcome("next")])
    assert store.read_since(size) == ([_outcome("next")], path.stat().st_size)
    assert b"half writ" not in path.read_bytes()


WRITER = """
import sys
from ragrouter.serving.feedback import JsonlFeedbackStore, Outcome
store, tag = JsonlFeedbackStore(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    store.append([Outcome(f"{tag} {i} {j} " + "x" * 30000, 1.0, 0.0, "both", float(i)) for j in range(1 + i % 3)])
"""


def test_appends_from_several_processes_interleave_whole_while_a_reader_follows(tmp_path):
    path, writers, batches = tmp_path / "feedback.jsonl", ("a", "b", "c"), 60
    reader = JsonlFeedbackStore(path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(batches)], env=env) for tag in writers]
    seen, cursor = [], 0
    while any(p.poll() is None for p in processes):  # reading while they write: never a partial line
        outcomes, cursor = reader.read_since(cursor)
        seen += outcomes
    assert [p.wait() for p in processes] == [0, 0, 0]
    seen += reader.read_since(cursor)[0]
    per_batch = [1 + i % 3 for i in range(batches)]
    assert len(seen) == len(writers) * sum(per_batch)
    for tag in writers:
        mine = [o.prompt.split(" ")[1:3] for o in seen if o.prompt.startswith(f"{tag} ")]
        assert mine == [[str(i), str(j)] for i in range(batches) for j in range(per_batch[i])]  # each process's order kept
    assert all(len(o.prompt.split(" ")[3]) == 30000 for o in seen)  # no line torn or spliced


def test_a_jsonl_log_is_a_table_source_for_the_next_training_run(tmp_path):
    path = tmp_path / "feedback.jsonl"
    store = JsonlFeedbackStore(path)
    store.append([_outcome("alpha", 1.0, 0.0), outcome_from_feedback("beta", model="strong", quality=1, quality_means=MEANS, now=2.0)])
    store.append([outcome_from_feedback("gamma", winner="tie", quality_means=None, now=3.0)])
    source = SourceConfig.from_dict({"name": "feedback", "kind": "table", "path": str(path), "strong_column": "strong_quality", "weak_column": "weak_quality"})
    records, summary = ingest_sources([source])
    frame = records.frame.set_index("prompt")
    assert summary.kept == 3 and list(frame.index) == ["alpha", "beta", "gamma"]
    assert frame["strong_quality"].tolist() == [1.0, 1.0, 0.5] and frame["weak_quality"].tolist() == [0.0, 0.6, 0.5]
    assert frame["origin_row"].tolist() == [1, 2, 3]


def test_two_postgres_stores_see_each_others_appends_and_export_a_training_log(postgres_database, tmp_path):
    one, other = PostgresFeedbackStore(postgres_database), open_feedback_store(postgres_database)
    try:
        assert isinstance(other, PostgresFeedbackStore) and other.read_since(0) == ([], 0)
        first = [_outcome("what is 2+2?", at=1.5), _outcome("prove it\nline two — ü", 0.5, 0.5, at=2.25)]
        one.append(first)
        seen, cursor = other.read_since(0)
        assert seen == first and cursor == 2
        other.append([_outcome("third", 0.0, 1.0, at=3.0)])
        assert one.read_since(cursor) == ([_outcome("third", 0.0, 1.0, at=3.0)], 3)
        assert one.read_since(3) == ([], 3)
        again = PostgresFeedbackStore(postgres_database)  # the table exists already: nothing lost
        assert again.read_since(0)[0] == [*first, _outcome("third", 0.0, 1.0, at=3.0)]
        again.close()
        for name in ("feedback.jsonl", "feedback.parquet"):
            assert export_feedback(one, tmp_path / name) == 3
            source = SourceConfig.from_dict({"name": "feedback", "kind": "table", "path": str(tmp_path / name), "strong_column": "strong_quality", "weak_column": "weak_quality"})
            records, _ = ingest_sources([source])
            assert records.prompts == ["what is 2+2?", "prove it\nline two — ü", "third"]
            assert records.frame["weak_quality"].tolist() == [0.0, 0.5, 1.0]
        with pytest.raises(ValueError, match=r"^path: must end in one of \.jsonl, \.parquet"):
            export_feedback(one, tmp_path / "feedback.csv")
    finally:
        one.close()
        other.close()


def test_a_postgres_reader_never_skips_an_append_that_commits_late(postgres_database):
    """An append waits for any insert in flight (here a raw transaction's, left open) to
    commit, so no reader can see a higher id first and skip the lower one for good."""
    import psycopg

    store, reader = PostgresFeedbackStore(postgres_database), PostgresFeedbackStore(postgres_database)
    in_flight = psycopg.connect(postgres_database)
    try:
        in_flight.execute("INSERT INTO ragrouter_feedback (created_at, prompt, strong_quality, weak_quality, observed) VALUES (1, 'early', 1, 0, 'both')")
        later = threading.Thread(target=store.append, args=([_outcome("late", at=2.0)],))
        later.start()
        later.join(timeout=1.0)
        assert later.is_alive()  # waiting for the first append to commit
        assert reader.read_since(0) == ([], 0)
        in_flight.commit()
        later.join(timeout=10)
        assert not later.is_alive()
        outcomes, cursor = reader.read_since(0)
        assert [o.prompt for o in outcomes] == ["early", "late"] and cursor == 2
    finally:
        in_flight.close()
        store.close()
        reader.close()
