"""The training pipeline on a real ZenML store and MLflow registry (isolated by conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from zenml.client import Client
from zenml.enums import ExecutionStatus

import ragrouter_cli
from pipelines import benchmark_pipeline, training_pipeline
from ragrouter.bundle import RouterBundle
from ragrouter.evaluation.bootstrap import INTERVAL_COLUMNS
from ragrouter.evaluation.metrics import evaluate_scores
from ragrouter.registry.model_registry import CHAMPION
from test_causal_llm_router import tiny_model  # noqa: F401  (fixture)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
UPSTREAM = ("ingest_data", "validate_data", "make_labels", "make_splits")
DOWNSTREAM_OF_ENCODER = ("extract_features", "build_index", "score_knn", "evaluate_routers", "train_router", "register_router")
CLI = str(Path(sys.executable).with_name("ragrouter"))


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)


@pytest.fixture(scope="module")
def mini_csv(routellm_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 real MMLU questions from 10 subjects as a custom CSV source."""
    parts = []
    for path in sorted((routellm_data / "mmlu").glob("mmlu_*.csv"))[:10]:
        frame = pd.read_csv(path).head(30)
        parts.append(
            pd.DataFrame(
                {"question": frame["prompt"], "big_ok": frame[STRONG], "small_ok": frame[WEAK], "subject": path.stem[5:]}
            )
        )
    target = tmp_path_factory.mktemp("mini") / "mini.csv"
    pd.concat(parts).to_csv(target, index=False)
    return target


def _mini_params(csv: Path, model_name: str, reports: Path, **overrides) -> dict:
    params = {
        "sources": [
            {"name": "mini", "kind": "table", "path": str(csv), "prompt_column": "question",
             "strong_column": "big_ok", "weak_column": "small_ok", "group_column": "subject"}
        ],
        "protocols": [{"name": "P1", "kind": "kfold", "source": "mini"}, {"name": "P2", "kind": "group_kfold", "source": "mini"}],
        "encoder": {"max_tokens": 64},
        "routers": {"knn": {"k": 10}},
        "registration": {"router": "knn", "model_name": model_name},
        "reports": {"dir": str(reports), "experiment": "pipeline-tests"},
    }
    params.update(overrides)
    return params


def _run(**params):
    training_pipeline(**params)
    return Client().get_pipeline("training_pipeline").last_run


def _statuses(run) -> dict[str, ExecutionStatus]:
    return {name: step.status for name, step in run.steps.items()}


def test_small_config_trains_evaluates_and_registers_a_champion(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "training_small.yaml").read_text())
    config["parameters"].update({"reports": {"dir": str(tmp_path / "reports")}, "registration": {"model_name": "ragrouter-small-test"}})
    config_path = tmp_path / "small.yaml"
    config_path.write_text(yaml.safe_dump(config))
    assert ragrouter_cli.main(["run", "training", "--config", str(config_path)]) == 0
    run = Client().get_pipeline("training_pipeline").last_run
    assert run.status == ExecutionStatus.COMPLETED

    latest = tmp_path / "reports" / "latest"
    assert latest.resolve().parent.name == "training_pipeline" and latest.resolve().name == run.name
    table = pd.read_csv(latest / "table.csv")
    assert list(table.columns) == ["protocol", "router", "APGR", "CPT20", "CPT50", "CPT80", "APGR_routellm", "n", *INTERVAL_COLUMNS]
    # the production pipeline scores its candidate on the promotion protocol only
    assert set(zip(table["protocol"], table["router"])) == {("P1", "ragrouter"), ("P1", "knn")}  # and the gate's baseline
    scores = pd.read_csv(latest / "scores.csv")
    recomputed = evaluate_scores(scores).set_index(["protocol", "router"])["APGR"]
    np.testing.assert_allclose(table.set_index(["protocol", "router"])["APGR"].loc[recomputed.index], recomputed)
    assert (latest / "curves_P1.png").read_bytes().startswith(b"\x89PNG") and not list(latest.glob("curves_P2*"))

    # What the ZenML dashboard shows: the table as markdown, one PNG of curves per protocol,
    # and the validation report.
    evaluation = run.steps["evaluate_routers"].outputs["evaluation_report"][0]
    kinds = sorted(str(v.type) for v in evaluation.visualizations)
    assert kinds == ["image", "markdown"]
    validation = run.steps["validate_data"].outputs["validation_report"][0]
    assert [str(v.type) for v in validation.visualizations] == ["markdown"]

    client = MlflowClient()
    champion = client.get_model_version_by_alias("ragrouter-small-test", CHAMPION)
    assert champion.tags["zenml_run_id"] == str(run.id) and champion.tags["router"] == "ragrouter"
    p1 = table[(table["protocol"] == "P1") & (table["router"] == "ragrouter")]["APGR"].iloc[0]
    assert float(champion.tags["P1.APGR"]) == pytest.approx(p1, abs=1e-6)
    mlflow_run = client.get_run(champion.run_id)
    assert mlflow_run.data.metrics["P1.ragrouter.APGR"] == pytest.approx(p1)
    # RAGRouter's training curve: one metric point per epoch, and the plot.
    steps = client.get_metric_history(champion.run_id, "training.val_loss")
    assert 1 <= len(steps) <= 10 and sorted(m.step for m in steps) == list(range(1, len(steps) + 1))
    assert "training_curve.png" in [a.path for a in client.list_artifacts(champion.run_id)]
    assert mlflow_run.data.params["router.network.fusion"] == "attention" and mlflow_run.data.params["router.k"] == "20"
    assert mlflow_run.data.params["router.encoder.max_tokens"] == "128"  # the small config's encoder block reached it
    features = run.steps["extract_features"].outputs["query_features"][0].load()
    assert features.ids == run.steps["validate_data"].outputs["validated_records"][0].load().frame["id"].tolist()
    # the encoder ran once; the one index holds its pooled vectors, and the registered router retrieves from it
    index = run.steps["build_index"].outputs["faiss_index"][0].load()
    np.testing.assert_array_equal(index.reconstruct_n(0, index.ntotal), features.pooled)
    labels = run.steps["make_labels"].outputs["labels"][0].load()
    assert labels.frame["id"].tolist() == features.ids

    # The registered pyfunc scores raw prompts as the trained bundle artifact does.
    bundle: RouterBundle = run.steps["train_router"].outputs["router_bundle"][0].load()
    prompts = ["What is the derivative of x^2?", "Which organ produces insulin?\nA. liver\nB. pancreas"]
    served = mlflow.pyfunc.load_model(f"models:/ragrouter-small-test@{CHAMPION}").predict(pd.DataFrame({"prompt": prompts}))
    np.testing.assert_allclose(served["p_strong"], bundle.route(prompts)[0], rtol=1e-5)
    assert set(served["model"]) <= {STRONG, WEAK}  # named from the data's columns


def test_rerun_is_cached_and_encoder_or_data_changes_rerun_only_what_depends_on_them(mini_csv, tmp_path):
    csv = tmp_path / "mini.csv"
    shutil.copy(mini_csv, csv)
    params = _mini_params(csv, "ragrouter-cache-test", tmp_path / "reports", promotion={"min_queries": 50})
    first = _run(**params)
    assert first.status == ExecutionStatus.COMPLETED

    again = _statuses(_run(**params))
    always_run = {"promote_router", "link_model_version", "publish_report"}  # re-check the registry and its links; write this run's files
    assert {s for name, s in again.items() if name not in always_run} == {ExecutionStatus.CACHED}, again
    assert {again[name] for name in always_run} == {ExecutionStatus.COMPLETED}
    assert (tmp_path / "reports" / "latest").resolve().name == Client().get_pipeline("training_pipeline").last_run.name

    # A new MLflow store where the old one was (a fresh checkout, a deleted mlruns.db): the
    # cached registration names a version that store never had, so the model is registered
    # (and the run's metrics logged) again. Each run is a new process, as a user's are (one
    # process keeps a deleted sqlite file's connection).
    store = tmp_path / "store" / "mlflow.db"
    config = tmp_path / "cache-test.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    for delete_store_first in (False, True):
        if delete_store_first:
            shutil.rmtree(store.parent)
        done = subprocess.run(
            [CLI, "run", "training", "--config", str(config)],
            env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}, capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    renewed = Client().get_pipeline("training_pipeline").last_run
    assert renewed.status == ExecutionStatus.COMPLETED
    assert {renewed.steps[name].status for name in ("evaluate_routers", "register_router")} == {ExecutionStatus.COMPLETED}
    renewed_store = MlflowClient(tracking_uri=f"sqlite:///{store}", registry_uri=f"sqlite:///{store}")
    champion = renewed_store.get_model_version_by_alias("ragrouter-cache-test", CHAMPION)
    assert (str(champion.version), champion.tags["zenml_run_id"]) == ("1", str(renewed.id))
    assert "P1.knn.APGR" in renewed_store.get_run(champion.run_id).data.metrics

    encoder = _statuses(_run(**{**params, "encoder": {"max_tokens": 48}}))
    assert all(encoder[name] == ExecutionStatus.CACHED for name in UPSTREAM)
    assert all(encoder[name] == ExecutionStatus.COMPLETED for name in DOWNSTREAM_OF_ENCODER)

    frame = pd.read_csv(csv)
    frame.loc[0, "big_ok"] = not frame.loc[0, "big_ok"]
    frame.to_csv(csv, index=False)
    data = _statuses(_run(**params))
    assert all(data[name] == ExecutionStatus.COMPLETED for name in ("ingest_data", "validate_data", "make_labels", "extract_features", "score_knn"))


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


def _non_utf8(frame: pd.DataFrame, path: Path) -> None:
    """A Latin-1 row appended after the 300 good ones (prompts span lines, so append, not insert)."""
    _write_csv(frame, path)
    with path.open("ab") as handle:
        handle.write(b'"caf\xe9 question",True,False,anatomy\n')


def _conflicting_duplicate(frame: pd.DataFrame, path: Path) -> None:
    twin = frame.iloc[[0]].assign(big_ok=not frame.iloc[0]["big_ok"])
    _write_csv(pd.concat([frame, twin]), path)


# (how to corrupt the mini CSV, words the error must contain, field of a failed validation or None
#  where ingestion itself rejects the file)
BAD_INPUTS = {
    "quality-1.7": (lambda f, p: _write_csv(f.assign(big_ok=f["big_ok"].astype(float).where(f.index != 4, 1.7)), p),
                    ["row 5", "strong_quality", "1.7"], "strong_quality"),
    "nan-quality": (lambda f, p: _write_csv(f.assign(small_ok=f["small_ok"].astype(float).where(f.index != 2)), p),
                    ["row 3", "weak_quality", "missing"], "weak_quality"),
    "missing-column": (lambda f, p: _write_csv(f.drop(columns=["small_ok"]), p), ["small_ok", "not found"], None),
    "wrong-type": (lambda f, p: _write_csv(f.astype({"small_ok": object}).assign(small_ok=lambda d: d["small_ok"].where(d.index != 1, "abc")), p),
                   ["row 2", "small_ok", "'abc'"], None),
    "empty-file": (lambda f, p: p.write_bytes(b""), ["empty"], None),
    "non-utf8": (_non_utf8, ["row 301", "not valid UTF-8"], None),
    "conflicting-duplicate": (_conflicting_duplicate, ["row 1", "conflicting outcomes"], "id"),
    "2mb-prompt": (lambda f, p: _write_csv(f.assign(question=f["question"].where(f.index != 1, "x" * 2_000_000)), p),
                   ["row 2", "prompt", "2,000,000 characters"], "prompt"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_stops_the_run_with_a_clear_error_and_registers_nothing(mini_csv, tmp_path, capsys, case):
    corrupt, expected, failed_field = BAD_INPUTS[case]
    csv = tmp_path / "bad.csv"
    corrupt(pd.read_csv(mini_csv), csv)
    model_name = f"ragrouter-bad-{tmp_path.name}"
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"parameters": _mini_params(csv, model_name, tmp_path / "reports")}))

    assert ragrouter_cli.main(["run", "training", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    message = captured.err
    assert message.startswith("error: invalid routing data") and str(csv) in message
    assert all(part in message for part in expected), message
    assert "Traceback" not in captured.out + captured.err
    assert MlflowClient().search_model_versions(f"name = '{model_name}'") == []
    assert not (tmp_path / "reports").exists()
    run = Client().get_pipeline("training_pipeline").last_run
    assert run.status == ExecutionStatus.FAILED and "train_router" not in run.steps
    if failed_field:  # the failed validation result is kept for review
        report = run.steps["validate_data"].outputs["validation_report"][0].load()
        assert not report.success and any(p[2] == failed_field for p in report.problems)


def test_benchmark_pipeline_compares_every_router_and_registers_nothing(mini_csv, tmp_path):
    params = _mini_params(mini_csv, "unused", tmp_path / "reports")
    params.pop("registration")
    params["routers"] = {"random": {}, "knn": {"k": 10}, "sw_ranking": {}, "mf": {"epochs": 5}}
    benchmark_pipeline(**params)
    run = Client().get_pipeline("benchmark_pipeline").last_run
    assert run.status == ExecutionStatus.COMPLETED
    assert not {"train_router", "register_router", "promote_router", "build_index"} & set(run.steps)
    assert [name for name in run.steps if name.startswith("extract_features")] == ["extract_features"]  # one encoder, read by three routers
    latest = (tmp_path / "reports" / "latest").resolve()
    assert latest.parent.name == "benchmark_pipeline" and latest.name == run.name
    table = pd.read_csv(latest / "table.csv")
    routers = ("random", "knn", "sw_ranking", "mf")
    assert set(zip(table["protocol"], table["router"])) == {(p, r) for p in ("P1", "P2") for r in routers}


def test_ablation_pipeline_writes_one_table_per_ablation_from_one_shared_feature_step(mini_csv, tiny_model, tmp_path):
    from pipelines import ablation_pipeline

    params = _mini_params(mini_csv, "unused", tmp_path / "reports")
    params.pop("registration")
    # Table 6: the LLM router with and without retrieved neighbours (tiny Qwen2 built on the fly)
    llm = {"model": str(tiny_model), "k": 2, "neighbour_tokens": 8, "max_tokens": 160, "epochs": 1, "batch_size": 32}
    params["routers"] = {
        "random": {"seed": 0},
        "ragrouter": {"k": 20, "training": {"epochs": 2}, "network": {"hidden": 16}},
        "ragrouter_llm": llm,
        "ragrouter_llm-no-rag": {**llm, "router": "ragrouter_llm", "k": 0},
    }
    params["ablations"] = {"no-syntax": {"network": {"syntax": False}}, "no-retrieval": {"network": {"retrieval": False}}}
    ablation_pipeline(**params)
    run = Client().get_pipeline("ablation_pipeline").last_run
    assert run.status == ExecutionStatus.COMPLETED
    assert [name for name in run.steps if name.startswith("extract_features")] == ["extract_features"]
    latest = (tmp_path / "reports" / "latest").resolve()
    table = pd.read_csv(latest / "table.csv").set_index(["router", "protocol"])
    assert ("random", "P1") in table.index  # the baselines share the comparison table
    assert not (latest / "ablation_random.csv").exists()
    for name, full, variant in [
        ("no-syntax", "ragrouter", "ragrouter-no-syntax"),
        ("no-retrieval", "ragrouter", "ragrouter-no-retrieval"),
        ("no-rag", "ragrouter_llm", "ragrouter_llm-no-rag"),
    ]:
        rows = pd.read_csv(latest / f"ablation_{name}.csv")
        assert list(rows["protocol"]) == ["P1", "P2"]
        for row in rows.itertuples():
            assert row.APGR_full == pytest.approx(table.loc[(full, row.protocol), "APGR"])
            assert row.APGR_variant == pytest.approx(table.loc[(variant, row.protocol), "APGR"])
            assert row.APGR_delta == pytest.approx(row.APGR_variant - row.APGR_full)
        assert f"Ablation: {name}" in (latest / "ablations.md").read_text()
