"""The data sources in the real pipelines: P5 (MMLU + GSM8K -> MT-Bench) for every router of
configs/benchmark.yaml on a small slice, the per-step counts on the records artifacts, and
crafted bad inputs stopping `ragrouter run training` with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from zenml.client import Client
from zenml.enums import ExecutionStatus

import ragrouter_cli
from pipelines import benchmark_pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SLICE = {"mmlu": 0.01, "gsm8k": 0.05}  # about 140 + 65 prompts; MT-Bench whole (144 records)


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)


@pytest.fixture(scope="module")
def p5_run(routellm_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """configs/benchmark.yaml's sources (sliced), its P5 and its routers (fewer epochs)."""
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "benchmark.yaml").read_text())["parameters"]
    sources = []
    for source in config["sources"]:
        path = routellm_data / Path(source["path"]).relative_to("data/routellm")
        fraction = {"sample_fraction": SLICE[source["name"]]} if source["name"] in SLICE else {}
        sources.append({**source, "path": str(path), **fraction})
    routers = {**config["routers"], "mf": {"dim": 16, "epochs": 5}, "ragrouter": {"k": 20, "training": {"epochs": 1}}}
    reports = tmp_path_factory.mktemp("p5") / "reports"
    benchmark_pipeline(
        sources=sources,
        protocols=[p for p in config["protocols"] if p["name"] == "P5"],
        encoder={"max_tokens": 64},
        routers=routers,
        reports={"dir": str(reports), "experiment": "p5-tests"},
    )
    run = Client().get_pipeline("benchmark_pipeline").last_run
    return run, reports, sources, routers


def test_p5_gives_a_row_for_every_benchmark_router(p5_run) -> None:
    run, reports, _, routers = p5_run
    assert run.status == ExecutionStatus.COMPLETED
    table = pd.read_csv(reports / "latest" / "table.csv")
    assert set(zip(table["protocol"], table["router"])) == {("P5", name) for name in routers}
    assert np.isfinite(table["APGR"]).all() and set(table["n"]) == {144}  # every MT-Bench record tested
    scores = pd.read_csv(reports / "latest" / "scores.csv")
    records = run.steps["validate_data"].outputs["validated_records"][0].load().frame
    tested = set(records.loc[records["source"] == "mt_bench", "id"])
    assert {router: set(rows["id"]) for router, rows in scores.groupby("router")} == {name: tested for name in routers}


def test_records_artifacts_count_each_source_and_what_each_step_did(p5_run) -> None:
    run, _, sources, _ = p5_run
    ingested = Client().get_artifact_version(run.steps["ingest_data"].outputs["routing_records"][0].id)
    validated = Client().get_artifact_version(run.steps["validate_data"].outputs["validated_records"][0].id)
    frame = validated.load().frame
    by_source = {str(k): int(v) for k, v in frame["source"].value_counts().items()}
    assert set(by_source) == {"mmlu", "gsm8k", "mt_bench"}

    for artifact in (ingested, validated):
        metadata = artifact.run_metadata
        assert metadata["records"] == len(frame) and metadata["by_source"] == by_source
        steps = metadata["ingest_data"]
        assert set(steps) == {s["name"] for s in sources}
        for name, counts in steps.items():
            dropped = sum(counts[k] for k in ("contaminated_dropped", "duplicates_collapsed", "near_duplicates_collapsed", "conflicting_dropped", "sampled_out"))
            assert counts["read"] - dropped == counts["kept"] == by_source[name]
    steps = validated.run_metadata["ingest_data"]
    assert (steps["mmlu"]["read"], steps["mmlu"]["contaminated_dropped"]) == (14_042, 5)
    assert (steps["gsm8k"]["read"], steps["gsm8k"]["contaminated_dropped"]) == (1_319, 12)
    assert steps["mt_bench"] == {"read": 160, "values_normalised": 0, "contaminated_dropped": 16, "duplicates_collapsed": 0,
                                 "near_duplicates_collapsed": 0, "conflicting_dropped": 0, "sampled_out": 0, "kept": 144}
    assert validated.run_metadata["validate_data"] == {"checked": len(frame), "rejected": 0, "problems": 0, "warnings": []}


# --- crafted bad inputs through the CLI --------------------------------------------------------

GOOD = [{"q": "What is 2+2?", "big": 1, "small": 0}, {"q": "Capital of France?", "big": 1, "small": 1}, {"q": "Name a prime.", "big": 1, "small": 0}]


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _table(name: str, path: str, **overrides) -> dict:
    return {"name": name, "kind": "table", "path": path, "prompt_column": "q", "strong_column": "big", "weak_column": "small", **overrides}


def _invisible(tmp: Path) -> tuple[list[dict], list[str], int | None]:
    path = _jsonl(tmp / "a.jsonl", [*GOOD, {"q": "\u200b\u202e\x00\x1b[0m", "big": 1, "small": 0}])
    return [_table("a", path)], [path, "row 4", "field 'prompt'", "nothing visible"], 1


def _across_sources(tmp: Path) -> tuple[list[dict], list[str], int | None]:
    a = _jsonl(tmp / "a.jsonl", GOOD)
    b = _jsonl(tmp / "b.jsonl", [{"q": "What is 2+2?", "big": 0, "small": 1}])
    return [_table("a", a), _table("b", b)], [a, b, "row 1", "field 'prompt'", "outcomes differ"], 2


def _surrogate(tmp: Path) -> tuple[list[dict], list[str], int | None]:
    path = _jsonl(tmp / "a.jsonl", [*GOOD, {"q": "bad \ud800", "big": 1, "small": 0}])
    return [_table("a", path)], [path, "row 4", "field 'q'", "lone surrogate U+D800"], None


def _same_column(tmp: Path) -> tuple[list[dict], list[str], int | None]:
    path = _jsonl(tmp / "a.jsonl", GOOD)
    return [_table("a", path, weak_column="big")], ["sources[0]", "strong_column and weak_column are both 'big'"], None


CRAFTED = {"invisible-prompt": _invisible, "conflict-across-sources": _across_sources, "lone-surrogate": _surrogate, "same-column": _same_column}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_input_stops_the_cli_with_one_clear_message(case, tmp_path, capsys) -> None:
    sources, expected, rejected = CRAFTED[case](tmp_path)
    model_name = f"crafted-{case}"
    params = {
        "sources": sources,
        "protocols": [{"name": "P1", "kind": "kfold", "source": "a", "folds": 2}],
        "routers": {"random": {}},
        "registration": {"router": "random", "model_name": model_name},
        "reports": {"dir": str(tmp_path / "reports")},
    }
    config = tmp_path / "crafted.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    runs_before = len(Client().list_pipeline_runs(size=1000))

    assert ragrouter_cli.main(["run", "training", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("error: ") == 1
    assert all(part in captured.err for part in expected), captured.err
    assert "Traceback" not in captured.out + captured.err
    assert MlflowClient().search_model_versions(f"name = '{model_name}'") == []
    assert not (tmp_path / "reports").exists()
    if case == "same-column":  # refused with the config, before any pipeline starts
        assert len(Client().list_pipeline_runs(size=1000)) == runs_before
        return
    run = Client().get_pipeline("training_pipeline").last_run
    assert run.status == ExecutionStatus.FAILED and "train_router" not in run.steps
    if rejected is not None:  # the failed report is kept, with the rows it rejected
        report = run.steps["validate_data"].outputs["validation_report"][0]
        assert (report.run_metadata["rejected"], report.run_metadata["success"]) == (rejected, False)
