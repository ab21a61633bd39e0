"""The LLM judge against a real OpenAI-compatible server on 127.0.0.1 (tests/openai_backend.py in
its "judge" mode), called with the official client: grades, cache, retries, failures, and the
training pipeline with the judge switched on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
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

from ragrouter.data.ingest import ingest_sources
from ragrouter.data.sources import SourceConfig
from ragrouter.judge.cache import VerdictCache
from ragrouter.judge.config import JudgeConfig
from ragrouter.judge.endpoint import EndpointJudge, JudgeEndpointError
from ragrouter.judge.grading import build_judge, grade_records
from ragrouter.judge.local_lm import LocalLMJudge
from ragrouter.judge.prompts import single_prompt
from support import free_port, venv_env, wait_until_healthy
from test_causal_llm_router import tiny_model  # noqa: F401  (fixture)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BACKEND_SCRIPT = Path(__file__).with_name("openai_backend.py")
STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
GARBLED = "GARBLED-ANSWER"
ROWS = 24


@pytest.fixture(scope="module")
def judge_url(tmp_path_factory: pytest.TempPathFactory):
    """A stand-in judge endpoint, started by the test: its /v1 base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("judge-server") / "server.log"
    process = subprocess.Popen([sys.executable, str(BACKEND_SCRIPT), "--port", str(port), "--name", "judge-model"],
                               stdout=log.open("w"), stderr=subprocess.STDOUT, env=venv_env())
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}/health", log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _control(url: str, **settings) -> None:
    body = {"mode": "judge", "delay_s": 0.0, "rate_limited": 0, "retry_after_s": 1, "garbage_marker": None, **settings}
    request = urllib.request.Request(url.removesuffix("/v1") + "/control", json.dumps(body).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def _requests(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as response:
        return json.loads(response.read())["requests"]


@pytest.fixture(scope="module")
def answers_csv(routellm_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GSM8K questions with both models' answers and the reference solution, and no correctness
    columns a source would read (golden correctness kept aside as `golden_*` for the asserts):
    half where only GPT-4 is right, half where both are, so the strong model is worth routing to."""
    frame = pd.read_csv(routellm_data / "gsm8k" / "gsm8k_responses.csv")
    strong_right, weak_right = frame[STRONG].astype(str) == "True", frame[WEAK].astype(str) == "True"
    frame = pd.concat([frame[strong_right & ~weak_right].iloc[: ROWS // 2], frame[strong_right & weak_right].iloc[: ROWS // 2]])
    references = {row["question"]: row["answer"] for row in map(json.loads, (routellm_data / "gsm8k" / "test.jsonl").open())}
    table = pd.DataFrame({
        "question": frame["prompt"],
        "big_answer": frame[f"{STRONG}_response"],
        "small_answer": frame[f"{WEAK}_response"],
        "solution": frame["prompt"].map(references),
        "golden_big": frame[STRONG].astype(str) == "True",
        "golden_small": frame[WEAK].astype(str) == "True",
    })
    assert table["solution"].notna().all()
    path = tmp_path_factory.mktemp("judged") / "answers.csv"
    table.to_csv(path, index=False)
    return path


def _source(path: Path) -> dict:
    return {"name": "answers", "kind": "table", "path": str(path), "prompt_column": "question", "label_kind": "judge",
            "strong_response_column": "big_answer", "weak_response_column": "small_answer", "reference_column": "solution"}


def _config(url: str, cache: Path, **endpoint) -> JudgeConfig:
    settings = {"base_url": url, "model": "judge-model", "concurrency": 3, "max_retries": 3, "backoff_s": 0.01,
                "timeout_s": 10, "price_per_1k_prompt_tokens": 0.01, "price_per_1k_completion_tokens": 0.03, **endpoint}
    return JudgeConfig.from_dict({"enabled": True, "mode": "single", "cache_dir": str(cache), "endpoint": settings})


def _grade(csv: Path, config: JudgeConfig):
    records, _ = ingest_sources([SourceConfig.from_dict(_source(csv))])
    cache = VerdictCache(config.cache_path())
    try:
        return grade_records(records, config, build_judge(config), cache)
    finally:
        cache.close()


def test_single_grades_follow_the_answers_and_a_second_run_asks_the_endpoint_nothing(judge_url, answers_csv, tmp_path):
    _control(judge_url)
    config = _config(judge_url, tmp_path / "cache")
    before = _requests(judge_url)
    judged, report = _grade(answers_csv, config)
    assert _requests(judge_url) - before == 2 * ROWS == report.requests and report.cached == 0
    frame = judged.frame
    assert len(frame) == ROWS and set(frame["label_kind"]) == {"judge"} and set(frame["judge"]) == {f"judge-model@{judge_url}"}
    assert set(frame["strong_quality"]) | set(frame["weak_quality"]) <= {0.2, 0.9}
    golden = pd.read_csv(answers_csv)
    agreement = np.mean(np.r_[(frame["strong_quality"] > 0.5) == golden["golden_big"], (frame["weak_quality"] > 0.5) == golden["golden_small"]])
    assert agreement >= 0.8, agreement  # the stand-in judge checks the final number; GSM8K's golden labels mostly agree
    # 10 prompt and 4 completion tokens per answer from the server, priced per 1k
    assert (report.prompt_tokens, report.completion_tokens) == (20 * ROWS, 8 * ROWS)
    assert report.cost == pytest.approx((20 * ROWS * 0.01 + 8 * ROWS * 0.03) / 1000)

    again, second = _grade(answers_csv, config)
    assert _requests(judge_url) - before == 2 * ROWS  # not one call more
    assert (second.requests, second.cached, second.prompt_tokens) == (0, 2 * ROWS, 0)
    pd.testing.assert_frame_equal(again.frame, frame)


def test_pairwise_asks_both_orders_and_the_strong_share_is_symmetric(judge_url, answers_csv, tmp_path):
    _control(judge_url)
    config = _config(judge_url, tmp_path / "cache")
    config.mode = "pairwise"
    before = _requests(judge_url)
    judged, report = _grade(answers_csv, config)
    assert _requests(judge_url) - before == 2 * ROWS == report.requests
    frame, golden = judged.frame, pd.read_csv(answers_csv)
    np.testing.assert_allclose(frame["strong_quality"] + frame["weak_quality"], 1.0)
    expected = np.where(golden["golden_big"] == golden["golden_small"], 0.5, np.where(golden["golden_big"], 1.0, 0.0))
    assert np.mean(frame["strong_quality"].to_numpy() == expected) >= 0.8


def test_a_429_storm_is_survived_waiting_as_the_server_asks(judge_url, answers_csv, tmp_path):
    _control(judge_url, rate_limited=8, retry_after_s=1)
    started = time.monotonic()
    judged, report = _grade(answers_csv, _config(judge_url, tmp_path / "cache", max_retries=6))
    assert len(judged) == ROWS and report.graded == ROWS and report.retries == 8
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 honoured (the backoff alone is 0.01 s)


def test_replies_without_a_verdict_are_counted_and_their_records_left_out(judge_url, answers_csv, tmp_path):
    frame = pd.read_csv(answers_csv)
    garbled = [2, 5, 11]
    frame.loc[garbled, "small_answer"] = GARBLED + " " + frame.loc[garbled, "small_answer"]
    csv = tmp_path / "garbled.csv"
    frame.to_csv(csv, index=False)
    _control(judge_url, garbage_marker=GARBLED)
    judged, report = _grade(csv, _config(judge_url, tmp_path / "cache"))
    assert (report.pending, report.graded, report.unparseable) == (ROWS, ROWS - 3, 3)
    assert len(judged) == ROWS - 3 and not judged.frame["prompt"].isin(frame.loc[garbled, "question"]).any()
    assert judged.frame["strong_quality"].notna().all()
    assert [example.split(":")[0] for example in report.unparseable_examples] == [f"{csv} row {i + 1}" for i in garbled]


@pytest.mark.parametrize("mode, expected", [("error", "HTTP 500"), ("slow", "no answer within 0.5 s")])
def test_a_failing_or_hanging_endpoint_stops_with_its_url_after_the_retries(judge_url, answers_csv, tmp_path, mode, expected):
    _control(judge_url, mode=mode, delay_s=3)
    before = _requests(judge_url)
    config = _config(judge_url, tmp_path / "cache", max_retries=2, timeout_s=0.5, concurrency=1)
    with pytest.raises(JudgeEndpointError) as failure:
        _grade(answers_csv, config)
    assert judge_url in str(failure.value) and expected in str(failure.value) and "3 attempt(s)" in str(failure.value)
    assert _requests(judge_url) - before == 3
    _control(judge_url)


def test_an_api_key_comes_from_the_named_environment_variable(judge_url, monkeypatch):
    config = _config(judge_url, Path("unused"), api_key_env="RAGROUTER_TEST_JUDGE_KEY")
    with pytest.raises(JudgeEndpointError, match="RAGROUTER_TEST_JUDGE_KEY is not set"):
        EndpointJudge(config.endpoint)
    monkeypatch.setenv("RAGROUTER_TEST_JUDGE_KEY", "secret-key")
    assert EndpointJudge(config.endpoint).client.api_key == "secret-key"


def test_the_prompts_are_mt_benchs_as_gpt4_was_given_them(routellm_data):
    """Turn-1 judgements hold GPT-4's full grading prompt: rebuilt here from the question, the
    answer and the reference answer (GPT-4's own, as MT-Bench gave it), it is the same text."""
    questions = {q["question_id"]: q for q in map(json.loads, (routellm_data / "mt_bench" / "question.jsonl").open())}
    checked = 0
    for judgement in map(json.loads, (routellm_data / "mt_bench" / "judgements.jsonl").open()):
        if judgement["turn"] != 1:
            continue
        question = questions[judgement["question_id"]]
        answer = _between(judgement["user_prompt"], "[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]")
        reference = _between(judgement["user_prompt"], "[The Start of Reference Answer]\n", "\n[The End of Reference Answer]")
        assert (reference is not None) == (judgement["judge"][1] == "single-math-v1")
        assert single_prompt(question["turns"][0], answer, reference).user == judgement["user_prompt"]
        checked += 1
    assert checked == 160


def test_a_local_causal_lm_judges_primed_at_the_verdict_and_its_replies_are_cached(answers_csv, tiny_model, tmp_path):  # noqa: F811  (fixture)
    config = JudgeConfig.from_dict({"enabled": True, "backend": "local", "cache_dir": str(tmp_path),
                                    "local": {"model": str(tiny_model), "max_new_tokens": 3, "max_prompt_tokens": 96}})
    judge = LocalLMJudge(config.local)
    records, _ = ingest_sources([SourceConfig.from_dict({**_source(answers_csv), "sample_fraction": 0.5})])
    cache = VerdictCache(config.cache_path())
    judged, report = grade_records(records, config, judge, cache)
    assert report.pending == len(records) > 0 and report.graded + report.unparseable == report.pending
    assert report.requests == 2 * len(records) and report.completion_tokens <= 3 * report.requests
    assert 0 < report.prompt_tokens / report.requests < 96 + 64  # the middle of long prompts is cut
    replies = [cache.get(key) for key in _keys(cache)]
    assert replies and all(reply.text.startswith("Rating: [[") for reply in replies)
    assert judged.frame["strong_quality"].between(0.1, 1.0).all() and len(judged) == report.graded
    _, again = grade_records(records, config, judge, cache)
    assert (again.requests, again.cached) == (0, 2 * len(records))
    cache.close()


def _pipeline_params(csv: Path, url: str, cache: Path, model_name: str, reports: Path) -> dict:
    return {
        "sources": [_source(csv)],
        "judge": {"enabled": True, "cache_dir": str(cache),
                  "endpoint": {"base_url": url, "model": "judge-model", "max_retries": 1, "backoff_s": 0.01, "timeout_s": 5}},
        "protocols": [{"name": "P1", "kind": "kfold", "source": "answers", "folds": 3}],
        "validation": {"min_rows": 10},  # a small file of answers, on purpose
        "encoder": {"max_tokens": 64},
        "routers": {"knn": {"k": 5}},
        "registration": {"router": "knn", "model_name": model_name},
        "reports": {"dir": str(reports), "experiment": "judge-tests"},
    }


@pytest.fixture
def _project_root(monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)


@pytest.mark.usefixtures("_project_root")
def test_a_pipeline_scores_routers_on_judged_labels_and_a_rerun_calls_the_judge_no_more(judge_url, answers_csv, tmp_path):
    _control(judge_url)
    params = _pipeline_params(answers_csv, judge_url, tmp_path / "cache", "unused", tmp_path / "reports")
    params.pop("registration")
    before = _requests(judge_url)
    benchmark_pipeline(**params)
    run = Client().get_pipeline("benchmark_pipeline").last_run
    assert run.status == ExecutionStatus.COMPLETED
    assert _requests(judge_url) - before == 2 * ROWS
    report = run.steps["label_with_judge"].run_metadata["judge"]
    assert (report["graded"], report["requests"], report["unparseable"]) == (ROWS, 2 * ROWS, 0)
    records = run.steps["validate_data"].outputs["validated_records"][0].load().frame
    assert len(records) == ROWS and set(records["label_kind"]) == {"judge"} and records["strong_quality"].notna().all()
    labels = run.steps["make_labels"].outputs["labels"][0].load()
    np.testing.assert_allclose(labels.gain_of(records["id"]), records["strong_quality"] - records["weak_quality"])
    table = pd.read_csv(tmp_path / "reports" / "latest" / "table.csv")
    assert table[["protocol", "router"]].values.tolist() == [["P1", "knn"]] and table["APGR"].notna().all()

    # Another concurrency re-runs the judge step (its parameters changed), not its verdicts: the
    # verdict cache answers, the records come out the same, and the steps after it stay cached.
    params["judge"]["endpoint"]["concurrency"] = 2
    benchmark_pipeline(**params)
    rerun = Client().get_pipeline("benchmark_pipeline").last_run
    assert rerun.status == ExecutionStatus.COMPLETED and _requests(judge_url) - before == 2 * ROWS
    assert rerun.steps["label_with_judge"].status == ExecutionStatus.COMPLETED
    assert rerun.steps["label_with_judge"].run_metadata["judge"]["cached"] == 2 * ROWS
    assert rerun.steps["score_knn"].status == ExecutionStatus.CACHED


@pytest.mark.usefixtures("_project_root")
def test_an_unreachable_judge_stops_the_run_before_training_naming_the_url(answers_csv, tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    params = _pipeline_params(answers_csv, url, tmp_path / "cache", "unjudged-router", tmp_path / "reports")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    assert ragrouter_cli.main(["run", "training", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1].startswith(f"error: judge endpoint {url}: cannot connect"), captured.err[-2000:]
    assert "Traceback" not in captured.out + captured.err
    run = Client().get_pipeline("training_pipeline").last_run
    assert run.status == ExecutionStatus.FAILED and "validate_data" not in run.steps and "train_router" not in run.steps
    assert MlflowClient().search_model_versions("name = 'unjudged-router'") == []
    assert not (tmp_path / "reports").exists()


def test_a_source_of_responses_without_qualities_needs_the_judge_enabled(answers_csv, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": {"sources": [_source(answers_csv)]}}))
    with pytest.raises(Exception, match=r"sources \['answers'\] give responses but no quality columns: set judge.enabled: true"):
        ragrouter_cli.checked_config(str(config))


def _between(text: str, start: str, end: str) -> str | None:
    return text.split(start, 1)[1].rsplit(end, 1)[0] if start in text else None


def _keys(cache: VerdictCache) -> list[str]:
    return [row[0] for row in cache._db.execute("SELECT key FROM verdicts")]


@pytest.mark.parametrize("change, message", [
    ({"weak_response_column": None}, "give both strong_response_column and weak_response_column"),
    ({"label_kind": "golden"}, "a source without quality columns needs label_kind: judge"),
    ({"strong_column": "golden_big"}, "a 'table' source needs strong_column and weak_column"),
])
def test_a_source_of_responses_is_checked_when_it_loads(answers_csv, change, message):
    with pytest.raises(Exception, match=message):
        SourceConfig.from_dict({**_source(answers_csv), **change})


def test_a_source_with_qualities_and_responses_keeps_both_and_needs_no_judge(answers_csv):
    source = SourceConfig.from_dict({**_source(answers_csv), "label_kind": "golden", "strong_column": "golden_big", "weak_column": "golden_small"})
    records, _ = ingest_sources([source])
    frame, table = records.frame, pd.read_csv(answers_csv)
    assert not source.judged and frame["strong_quality"].tolist() == table["golden_big"].astype(float).tolist()
    assert frame["weak_response"].tolist() == table["small_answer"].tolist() and frame["judge"].isna().all()
