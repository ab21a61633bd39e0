from __future__ import annotations

import pandas as pd
import pytest

from ragrouter.data.records import RoutingRecords, record_id
from ragrouter.splits import DEFAULT_PROTOCOLS, ProtocolConfig, make_splits, skipped_protocols, split_fingerprint


def _records(n_mmlu: int = 200, n_gsm8k: int = 50, subjects: int = 10) -> RoutingRecords:
    rows = []
    for i in range(n_mmlu):
        rows.append(("mmlu", f"mmlu question {i}", f"subject_{i % subjects}"))
    for i in range(n_gsm8k):
        rows.append(("gsm8k", f"gsm8k question {i}", "gsm8k"))
    frame = pd.DataFrame(rows, columns=["source", "prompt", "group"])
    frame["id"] = [record_id(s, p) for s, p in zip(frame["source"], frame["prompt"])]
    frame["strong_quality"], frame["weak_quality"], frame["label_kind"] = 1.0, 0.0, "golden"
    frame["origin_file"], frame["origin_row"] = "synthetic.csv", range(1, len(frame) + 1)
    return RoutingRecords(frame)


def test_every_query_is_tested_exactly_once_and_never_trains_on_itself():
    records = _records()
    splits = make_splits(records, DEFAULT_PROTOCOLS)
    for protocol, source in (("P1", "mmlu"), ("P2", "mmlu"), ("P3", "gsm8k")):
        rows = splits[splits["protocol"] == protocol]
        tested = rows[rows["role"] == "test"]
        assert sorted(tested["id"]) == sorted(records.frame.loc[records.frame["source"] == source, "id"])
        for _, fold in rows.groupby("fold"):
            assert not set(fold.loc[fold["role"] == "train", "id"]) & set(fold.loc[fold["role"] == "test", "id"])
    transfer = splits[splits["protocol"] == "P4"]
    train_ids = set(transfer.loc[transfer["role"] == "train", "id"])
    assert train_ids == set(records.frame.loc[records.frame["source"] == "mmlu", "id"])


def test_group_folds_keep_each_subject_on_one_side():
    records = _records()
    splits = make_splits(records, [ProtocolConfig("P2", "group_kfold", "mmlu")])
    group_of = records.frame.set_index("id")["group"]
    for _, fold in splits.groupby("fold"):
        train_groups = set(group_of[fold.loc[fold["role"] == "train", "id"]])
        test_groups = set(group_of[fold.loc[fold["role"] == "test", "id"]])
        assert test_groups and not train_groups & test_groups
    # 10 equal subjects over 5 folds: two subjects per fold.
    assert splits[splits["role"] == "test"].groupby("fold").size().tolist() == [40] * 5


def test_splits_do_not_depend_on_row_order():
    records = _records()
    shuffled = RoutingRecords(records.frame.sample(frac=1.0, random_state=3))
    a, b = make_splits(records, DEFAULT_PROTOCOLS), make_splits(shuffled, DEFAULT_PROTOCOLS)
    for protocol in ("P1", "P2", "P3", "P4"):
        assert split_fingerprint(a, protocol, records) == split_fingerprint(b, protocol, shuffled)
    assert split_fingerprint(a, "P1", records) != split_fingerprint(a, "P3", records)


def test_protocols_with_absent_sources_are_skipped():
    records = _records(n_gsm8k=0)
    splits = make_splits(records, DEFAULT_PROTOCOLS)
    assert set(splits["protocol"]) == {"P1", "P2"}
    assert skipped_protocols(records, DEFAULT_PROTOCOLS) == ["P3", "P4"]


def test_bad_protocol_configs_are_rejected():
    with pytest.raises(ValueError, match="kind: must be one of kfold, group_kfold, transfer; got str 'holdout'"):
        ProtocolConfig.from_dict({"name": "X", "kind": "holdout", "source": "mmlu"})
    with pytest.raises(ValueError, match="unknown kind"):
        ProtocolConfig("X", "holdout", "mmlu")
    with pytest.raises(ValueError, match="train_source"):
        ProtocolConfig.from_dict({"name": "X", "kind": "transfer", "source": "gsm8k"})
    with pytest.raises(ValueError, match="fold: unknown key; did you mean folds"):
        ProtocolConfig.from_dict({"name": "X", "kind": "kfold", "source": "mmlu", "fold": 3})
    with pytest.raises(ValueError, match="fewer than 5 folds"):
        make_splits(_records(subjects=3), [ProtocolConfig("P2", "group_kfold", "mmlu")])


def test_a_protocol_can_score_its_first_folds_only():
    records = _records(subjects=6)
    full = make_splits(records, [ProtocolConfig("P1", "kfold", "mmlu")])
    held_out = make_splits(records, [ProtocolConfig("P1", "kfold", "mmlu", scored_folds=1)])
    assert set(held_out["fold"]) == {0}
    pd.testing.assert_frame_equal(held_out, full[full["fold"] == 0].reset_index(drop=True))
    assert split_fingerprint(held_out, "P1", records) != split_fingerprint(full, "P1", records)
    with pytest.raises(ValueError, match="scored_folds must be between 1 and folds"):
        ProtocolConfig("P1", "kfold", "mmlu", scored_folds=0)


def test_transfer_can_train_on_several_sources():
    records = _records()
    extra = _records(n_mmlu=0, n_gsm8k=30).frame.assign(source="mt_bench")
    extra["id"] = [record_id("mt_bench", p) for p in extra["prompt"]]
    records = RoutingRecords(pd.concat([records.frame, extra]))
    p5 = ProtocolConfig.from_dict({"name": "P5", "kind": "transfer", "source": "mt_bench", "folds": 1, "train_source": ["mmlu", "gsm8k"]})
    assert p5.sources == {"mt_bench", "mmlu", "gsm8k"}
    splits = make_splits(records, [p5])
    role = splits.set_index("id")["role"]
    frame = records.frame.set_index("id")
    assert set(role[role == "train"].index) == set(frame.index[frame["source"] != "mt_bench"])
    assert set(role[role == "test"].index) == set(frame.index[frame["source"] == "mt_bench"])
    assert skipped_protocols(_records(), [p5]) == ["P5"]


def test_prompts_equal_after_normalisation_share_a_fold():
    records = _records()
    frame = records.frame
    # Twins of 30 prompts: full-width letters, a zero-width space, doubled and odd whitespace.
    twins = frame.head(30).copy()
    twins["prompt"] = ["\uff4d\uff4d\uff4c\uff55" + p[4:].replace(" ", " \u200b\u3000 ") + "\n" for p in twins["prompt"]]
    twins["id"] = [record_id("mmlu", p) for p in twins["prompt"]]
    both = RoutingRecords(pd.concat([frame, twins]))
    splits = make_splits(both, [ProtocolConfig("P1", "kfold", "mmlu")])
    test = splits[splits["role"] == "test"].set_index("id")["fold"]
    for original, twin in zip(frame.head(30)["id"], twins["id"]):
        assert test[original] == test[twin]
    # every original keeps the fold it had before its twin existed (the twin joins it)
    alone = make_splits(records, [ProtocolConfig("P1", "kfold", "mmlu")])
    alone_test = alone[alone["role"] == "test"].set_index("id")["fold"]
    assert test.loc[alone_test.index].equals(alone_test)


def test_relabelled_records_change_the_fingerprint_of_the_same_ids():
    records = _records()
    splits = make_splits(records, DEFAULT_PROTOCOLS)
    relabelled = records.frame.copy()
    relabelled.loc[relabelled.index[0], "strong_quality"] = 1.0 - relabelled.loc[relabelled.index[0], "strong_quality"]
    relabelled = RoutingRecords(relabelled)
    pd.testing.assert_frame_equal(make_splits(relabelled, DEFAULT_PROTOCOLS), splits)  # the same ids in the same folds
    assert split_fingerprint(splits, "P1", relabelled) != split_fingerprint(splits, "P1", records)
    assert split_fingerprint(splits, "P3", relabelled) == split_fingerprint(splits, "P3", records)  # that record is not in P3
