"""`ragrouter serve` as a user runs it: a real gateway process in front of two local
OpenAI-compatible back-ends, a router registered in a real MLflow registry, the official
`openai` client as the caller."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pytest
import yaml
from openai import OpenAI

from support import free_port, venv_env, wait_until_healthy
from ragrouter.bundle import RouterBundle
from ragrouter.data.ingest import ingest_sources
from ragrouter.data.sources import SourceConfig
from ragrouter.labels import Labels
from ragrouter.registry.model_registry import CHAMPION, register_bundle
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.routers import build_router
from ragrouter.routers.random import RandomRouter, RandomRouterConfig
from ragrouter.routers.registry import register_router
from ragrouter.training import train_bundle

pytestmark = pytest.mark.slow
MODEL_NAME = "gateway-router"
TOKEN = "test-token-123"
STRONG, WEAK = "big-model", "small-model"
BACKEND_SCRIPT = Path(__file__).with_name("openai_backend.py")


@dataclass
class Served:
    url: str
    bundle: RouterBundle
    strong_url: str
    weak_url: str
    feedback_log: Path
    state: Path


def _request(url: str, body: bytes | None = None, token: str | None = TOKEN, method: str | None = None) -> tuple[int, dict | str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, body, headers, method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read().decode()
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


def _post(url: str, payload: object, **kwargs) -> tuple[int, dict | str]:
    return _request(url, json.dumps(payload).encode(), **kwargs)


def _metric(base: str, name: str, **labels: str) -> float:
    _, text = _request(f"{base}/metrics")
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in str(text).splitlines():
        if line.startswith(name) and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            if series == name or (wanted and series.startswith(f"{name}{{") and all(part in series for part in wanted.split(","))):
                total += float(value)
    return total


def _start(args: list[str], log: Path, health: str, env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env or venv_env())
    wait_until_healthy(process, health, log)
    return process


def _start_gateway(served_dir: Path, name: str, config: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config_file = served_dir / f"{name}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    ragrouter_cli = Path(sys.executable).with_name("ragrouter")
    process = _start(
        [str(ragrouter_cli), "serve", "--config", str(config_file), "--port", str(port), "--log-level", "warning"],
        served_dir / f"{name}.log", f"http://127.0.0.1:{port}/health", env=venv_env(GATEWAY_TOKEN=TOKEN),
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, routellm_data: Path):
    state = tmp_path_factory.mktemp("gateway")
    records, _ = ingest_sources([SourceConfig(name="mmlu", kind="routellm_mmlu", path=str(routellm_data / "mmlu"), sample_fraction=0.03)])
    bundle = train_bundle(build_router("knn", {"k": 10}), records, Labels.of(records), 0.5, {"models": {"strong": STRONG, "weak": WEAK}})
    configure_tracking()
    with mlflow.start_run(experiment_id=use_experiment("tests")):
        version = register_bundle(bundle, MODEL_NAME, {})
    mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, version)

    processes = []
    try:
        urls = {}
        for role, name in (("strong", STRONG), ("weak", WEAK)):
            port = free_port()
            processes.append(_start([sys.executable, str(BACKEND_SCRIPT), "--port", str(port), "--name", name],
                                    state / f"{role}.log", f"http://127.0.0.1:{port}/health"))
            urls[role] = f"http://127.0.0.1:{port}"
        feedback_log = state / "feedback.jsonl"
        config = {
            "model": f"models:/{MODEL_NAME}@{CHAMPION}",
            "strong": {"url": f"{urls['strong']}/v1", "timeout_s": 2.0},
            "weak": {"url": f"{urls['weak']}/v1", "timeout_s": 2.0},
            "token_env": "GATEWAY_TOKEN",
            "reload_interval_s": 0.5,
            "cost": {"window": 200, "warmup": 50},
            "limits": {"max_body_bytes": 50_000, "max_batch": 16, "max_prompt_chars": 4_000},
            "feedback": {"store": str(feedback_log), "sync_interval_s": 0.3},
        }
        gateway, url = _start_gateway(state, "gateway", config)
        processes.append(gateway)
        yield Served(url, bundle, urls["strong"], urls["weak"], feedback_log, state)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def _client(served: Served) -> OpenAI:
    return OpenAI(base_url=f"{served.url}/v1", api_key=TOKEN, max_retries=0)


def test_the_openai_client_gets_the_routed_models_answer(served):
    prompts = ["What is 2 + 2?", "Prove that there are infinitely many primes.", "Which planet is largest?"]
    scores = served.bundle.router.score_prompts(prompts)
    threshold = float(np.median(scores))  # some prompts on each side
    before = _metric(served.url, "ragrouter_requests_total", endpoint="/v1/chat/completions", status="200")
    for prompt, score in zip(prompts, scores):
        answer = _client(served).chat.completions.create(
            model=f"router-{MODEL_NAME}-t{threshold}", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]
        )
        expected = STRONG if score >= threshold else WEAK
        assert answer.model == expected
        assert answer.choices[0].message.content.startswith(f"answer from {expected}")
    assert _metric(served.url, "ragrouter_requests_total", endpoint="/v1/chat/completions", status="200") == before + 3
    assert _metric(served.url, "ragrouter_routing_decisions_total", model=STRONG) >= 1
    assert _metric(served.url, "ragrouter_routing_decisions_total", model=WEAK) >= 1


def test_route_answers_the_routers_scores_and_a_per_request_target(served):
    prompts = ["What is the capital of France?", "Solve x^2 - 5x + 6 = 0.", "Name a prime above 100."]
    status, answer = _post(f"{served.url}/route", {"prompts": prompts, "threshold": 0.5})
    assert status == 200
    np.testing.assert_allclose([r["p_strong"] for r in answer["results"]], served.bundle.router.score_prompts(prompts), atol=1e-6)
    assert [r["model"] for r in answer["results"]] == [STRONG if r["p_strong"] >= 0.5 else WEAK for r in answer["results"]]
    _, everyone = _post(f"{served.url}/route", {"prompts": prompts, "strong_fraction": 0.0})
    assert [r["route_to_strong"] for r in everyone["results"]] == [False] * 3


def test_streams_and_text_completions_pass_through(served):
    # threshold 0 sends every prompt to the strong model, 2 every prompt to the weak one
    stream = _client(served).chat.completions.create(model=f"router-{MODEL_NAME}-t0", messages=[{"role": "user", "content": "Tell me a story."}], stream=True)
    chunks = [chunk.choices[0].delta.content for chunk in stream if chunk.choices]
    assert "".join(chunks).startswith(f"answer from {STRONG}")
    text = _client(served).completions.create(model=f"router-{MODEL_NAME}-t2", prompt="Say hi.")
    assert text.model == WEAK and text.choices[0].text.startswith(f"answer from {WEAK}")


def test_models_health_and_auth(served):
    status, models = _request(f"{served.url}/v1/models")
    assert status == 200 and models["data"][0]["id"] == f"router-{MODEL_NAME}"
    status, health = _request(f"{served.url}/health", token=None)
    assert status == 200 and health["model"] == MODEL_NAME
    for path in ("/route", "/metrics", "/v1/models"):
        status, body = _request(f"{served.url}{path}", b"{}" if path == "/route" else None, token=None)
        assert status == 401, path
        status, body = _request(f"{served.url}{path}", b"{}" if path == "/route" else None, token="wrong")
        assert status == 401 and "token" in body["error"]["message"]


@pytest.mark.parametrize(
    "path, body, status, field",
    [
        ("/route", b'{"prompts": ["a", 1]}', 422, "prompts[1]"),
        ("/route", b'{"prompts": [null]}', 422, "prompts[0]"),
        ("/route", b'{"prompt": 7}', 422, "prompt"),
        ("/route", b'{"prompts": []}', 422, "prompts"),
        ("/route", json.dumps({"prompts": ["q"] * 17}).encode(), 413, "prompts"),
        ("/route", b'{"prompts": ["a"], "threshold": "high"}', 422, "threshold"),
        ("/route", b'{"prompts": ["a"], "strong_fraction": 1.5}', 422, "strong_fraction"),
        ("/route", b'{"prompts": ["a"', 400, None),
        ("/route", b'[1, 2]', 400, None),
        ("/route", json.dumps({"prompts": ["x" * 60_000]}).encode(), 413, None),
        ("/v1/chat/completions", b'{"model": "m", "messages": "hello"}', 422, "messages"),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": 5}]}', 422, "messages[0].content"),
        ("/v1/chat/completions", b'{"messages": [{"role": "system", "content": "x"}]}', 422, "messages"),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', 422, "stream"),
        ("/v1/chat/completions", b'{"model": "router-r-1.7", "messages": [{"role": "user", "content": "x"}]}', 422, "model"),
        ("/v1/completions", b'{"prompt": {"text": "x"}}', 422, "prompt"),
        ("/feedback", b'{"prompt": "x", "strong_quality": 1}', 422, "weak_quality"),
        ("/feedback", b'{"prompt": "x", "wrong": 1}', 422, "wrong"),
        ("/feedback", b'{"prompt": "x", "winner": "xxxxxxxxxxdraw"}', 422, "winner"),
    ],
)
def test_hostile_requests_get_a_clear_answer_without_echo_or_trace(served, path, body, status, field):
    got, answer = _request(f"{served.url}{path}", body)
    assert got == status, answer
    error = answer["error"]
    assert error["message"] and error["param"] == field
    text = json.dumps(answer)
    assert "Traceback" not in text and "xxxxxxxxxx" not in text and "hello" not in text


def test_a_long_prompt_is_routed_on_its_tail(served):
    question = "What is the derivative of x^3?"
    long_prompt = "Here are some examples. " * 400 + question  # over max_prompt_chars=4000
    _, answer = _post(f"{served.url}/route", {"prompt": long_prompt, "threshold": 0.5})
    tail = long_prompt[-4000:]
    assert answer["results"][0]["p_strong"] == pytest.approx(float(served.bundle.router.score_prompts([tail])[0]), abs=1e-6)


def test_a_failing_backend_fails_over_and_both_failing_is_a_502(served):
    _post(f"{served.strong_url}/control", {"mode": "error"}, token=None)
    try:
        before = _metric(served.url, "ragrouter_failovers_total", from_model=STRONG)
        answer = _client(served).chat.completions.create(model=f"router-{MODEL_NAME}-t0", messages=[{"role": "user", "content": "hi"}])
        assert answer.model == WEAK
        assert _metric(served.url, "ragrouter_failovers_total", from_model=STRONG) == before + 1
        assert _metric(served.url, "ragrouter_backend_errors_total", model=STRONG, reason="server_error") >= 1
        _post(f"{served.weak_url}/control", {"mode": "slow", "delay_s": 5}, token=None)
        started = time.monotonic()
        status, body = _post(f"{served.url}/v1/chat/completions", {"model": f"router-{MODEL_NAME}-t0", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 502 and "strong" in body["error"]["message"] and "timeout" in body["error"]["message"]
        assert time.monotonic() - started < 4.5  # each back-end's 2 s timeout, not the slow answer
    finally:
        _post(f"{served.strong_url}/control", {"mode": "ok"}, token=None)
        _post(f"{served.weak_url}/control", {"mode": "ok"}, token=None)


def test_a_slow_backend_holds_only_its_own_requests(served):
    _post(f"{served.weak_url}/control", {"mode": "slow", "delay_s": 1.5}, token=None)
    try:
        def ask(threshold: str) -> float:
            started = time.monotonic()
            status, _ = _post(f"{served.url}/v1/chat/completions", {"model": f"router-{MODEL_NAME}-{threshold}", "messages": [{"role": "user", "content": "hi"}]})
            assert status == 200
            return time.monotonic() - started

        with ThreadPoolExecutor(6) as pool:
            slow = pool.submit(ask, "t2")  # to the weak model, which now takes 1.5 s
            time.sleep(0.1)
            fast = [pool.submit(ask, "t0") for _ in range(5)]  # to the strong one
            assert max(f.result() for f in fast) < 1.0
            assert slow.result() >= 1.5
    finally:
        _post(f"{served.weak_url}/control", {"mode": "ok"}, token=None)


def test_the_strong_share_holds_on_traffic_unlike_training(served, routellm_data: Path):
    """GSM8K prompts to a router trained on MMLU: the rolling quantile holds the 50% target."""
    records, _ = ingest_sources([SourceConfig(name="gsm8k", kind="routellm_gsm8k", path=str(routellm_data / "gsm8k" / "gsm8k_responses.csv"), sample_fraction=0.25)])
    prompts = records.prompts[:400]
    calibrated = served.bundle.router.score_prompts(prompts) >= served.bundle.threshold
    decisions = []
    for start in range(0, len(prompts), 8):
        _, answer = _post(f"{served.url}/route", {"prompts": prompts[start : start + 8]})
        decisions += [r["route_to_strong"] for r in answer["results"]]
    after_warmup = np.asarray(decisions[100:])
    share = after_warmup.mean()
    print(f"strong share after warm-up {share:.3f} (calibrated threshold alone: {calibrated[100:].mean():.3f})")
    assert abs(share - 0.5) <= 0.05
    assert _metric(served.url, "ragrouter_strong_share") == pytest.approx(np.mean(decisions[-200:]), abs=0.02)


@contextmanager
def _running_gateway(served_dir: Path, name: str, config: dict) -> Iterator[str]:
    """Another gateway process on `config`, stopped afterwards; yields its URL."""
    process, url = _start_gateway(served_dir, name, config)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_feedback_reaches_every_gateway_process_and_survives_a_restart(served):
    prompt = "Which enzyme unwinds DNA during replication in a hypothetical organism Zorblax?"
    _, before = _post(f"{served.url}/route", {"prompt": prompt, "threshold": 0.5})
    size = _metric(served.url, "ragrouter_knowledge_base_size")
    config = yaml.safe_load((served.state / "gateway.yaml").read_text())
    with _running_gateway(served.state, "second", config) as second_url:
        for _ in range(3):
            status, answer = _post(f"{served.url}/feedback", {"prompt": prompt, "strong_quality": 1, "weak_quality": 0})
            assert status == 200 and answer["learns"] is True
        time.sleep(1.0)  # > sync_interval_s
        assert _metric(served.url, "ragrouter_knowledge_base_size") == size + 3
        assert _metric(second_url, "ragrouter_knowledge_base_size") == size + 3
        for url in (served.url, second_url):
            _, after = _post(f"{url}/route", {"prompt": prompt, "threshold": 0.5})
            assert after["results"][0]["p_strong"] > before["results"][0]["p_strong"]
    with _running_gateway(served.state, "restarted", config) as restarted_url:
        assert _metric(restarted_url, "ragrouter_knowledge_base_size") == size + 3
    logged = [json.loads(line) for line in served.feedback_log.read_text().splitlines()]
    assert len(logged) == 3 and logged[0]["prompt"] == prompt


def test_replicas_share_feedback_through_postgresql_and_a_restarted_one_loses_none(served, postgres_database):
    """Two gateway processes on one PostgreSQL store, as replicas on two hosts would run."""
    prompt = "Which rune opens the vault of the hypothetical kingdom of Qelmara?"
    config = {**yaml.safe_load((served.state / "gateway.yaml").read_text()), "feedback": {"store": postgres_database, "sync_interval_s": 0.3}}
    with _running_gateway(served.state, "replica-one", config) as one_url:
        size = _metric(one_url, "ragrouter_knowledge_base_size")
        with _running_gateway(served.state, "replica-two", config) as two_url:
            _, before = _post(f"{two_url}/route", {"prompt": prompt, "threshold": 0.5})
            for _ in range(2):
                status, answer = _post(f"{one_url}/feedback", {"prompt": prompt, "strong_quality": 1, "weak_quality": 0})
                assert status == 200 and answer["learns"] is True
            status, _ = _post(f"{two_url}/feedback", {"prompt": prompt, "model": "strong", "quality": 1.0})
            assert status == 200
            time.sleep(1.0)  # > sync_interval_s
            for url in (one_url, two_url):
                assert _metric(url, "ragrouter_knowledge_base_size") == size + 3
            _, after = _post(f"{two_url}/route", {"prompt": prompt, "threshold": 0.5})
            assert after["results"][0]["p_strong"] > before["results"][0]["p_strong"]
        with _running_gateway(served.state, "replica-two-again", config) as restarted_url:
            assert _metric(restarted_url, "ragrouter_knowledge_base_size") == size + 3


def test_a_moved_alias_is_served_and_a_broken_version_is_not(served):
    """Runs last: it changes the served version."""
    client = mlflow.MlflowClient()
    bundle = RouterBundle(build_router("random", {"seed": 3}), 0.5, 0.5, {"models": {"strong": STRONG, "weak": WEAK}})
    # a version the gateway cannot load: its router is known to this test process only
    unloadable = RouterBundle(_RouterOnlyTheseTestsKnow(RandomRouterConfig(seed=3)), 0.5, 0.5, {})
    with mlflow.start_run(experiment_id=use_experiment("tests")):
        good = register_bundle(bundle, MODEL_NAME, {})
        broken = register_bundle(unloadable, MODEL_NAME, {})
    statuses: list[int] = []
    swapped = threading.Event()

    def keep_routing() -> None:  # traffic while the version is swapped: none of it may fail
        while not swapped.is_set():
            statuses.append(_post(f"{served.url}/route", {"prompts": ["What is 2+2?"]})[0])

    traffic = threading.Thread(target=keep_routing)
    traffic.start()
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, good)
    deadline = time.monotonic() + 30
    try:
        while _request(f"{served.url}/health")[1]["version"] != good:
            assert time.monotonic() < deadline, "the gateway did not pick up the moved alias"
            time.sleep(0.3)
        time.sleep(0.3)
    finally:
        swapped.set()
        traffic.join()
    assert len(statuses) > 5 and set(statuses) == {200}
    status, answer = _post(f"{served.url}/route", {"prompts": ["a", "b"], "threshold": 0.5})
    assert status == 200
    np.testing.assert_allclose([r["p_strong"] for r in answer["results"]], bundle.router.score_prompts(["a", "b"]))

    client.set_registered_model_alias(MODEL_NAME, CHAMPION, broken)
    deadline = time.monotonic() + 30
    while _metric(served.url, "ragrouter_reloads_total", outcome="failed") < 1:
        assert time.monotonic() < deadline, "the gateway never tried the broken version"
        time.sleep(0.3)
    assert _request(f"{served.url}/health")[1]["version"] == good
    assert _post(f"{served.url}/route", {"prompts": ["a"]})[0] == 200


@register_router("router-only-these-tests-know")
class _RouterOnlyTheseTestsKnow(RandomRouter):
    pass


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--weak-url", "http://127.0.0.1:1/v1"], "strong.url: the strong model's endpoint is required"),
        (["--strong-url", "http://a/v1", "--weak-url", "http://b/v1", "--model", "/nowhere"], "model: /nowhere is neither"),
        (["--strong-url", "http://a/v1", "--weak-url", "http://b/v1", "--strong-key-env", "RAGROUTER_UNSET_KEY"], "strong.key_env: environment variable RAGROUTER_UNSET_KEY is not set"),
    ],
)
def test_serve_refuses_bad_settings_with_one_line(argv, message, capsys):
    from ragrouter_cli import main

    assert main(["serve", *argv]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error


def test_a_gateway_config_typo_names_the_key(tmp_path, capsys):
    from ragrouter_cli import main

    (tmp_path / "gateway.yaml").write_text("cost: {windw: 10}\n")
    assert main(["serve", "-c", str(tmp_path / "gateway.yaml"), "--strong-url", "http://a/v1", "--weak-url", "http://b/v1"]) == 2
    assert "cost.windw: unknown key; did you mean window?" in capsys.readouterr().err
