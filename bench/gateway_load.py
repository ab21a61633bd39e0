"""A bounded load test of `ragrouter serve` on loopback, beside the gateways a user would pick instead.

    python bench/gateway_load.py [--model models:/ragrouter@champion] [--requests 20000]
                                 [--concurrency 32] [--peers litellm routellm] [--out bench/results]

Two local OpenAI-compatible back-ends that answer at once (tests/openai_backend.py) stand in
for the models. In one run, on one machine:

- the router outside HTTP: single-prompt p50 and batched throughput (batches of 32), the
  figures the gateway is held to;
- the back-end called directly: latency at concurrency 1, throughput at `--concurrency`;
- each gateway (ours, then each peer) called the same way: its latency at concurrency 1 minus
  the direct call's is its routing overhead (p50/p95/p99); `--requests` chat completions at
  `--concurrency` give its throughput; errors are counted by the client and, for ours, by its
  own /metrics; memory is the gateway process's peak RSS.

Peers run from virtual environments of the bench's own under bench/.peers/ (created on first
use, never the project's): LiteLLM's proxy (`litellm[proxy]`, forwarding to one back-end, no
routing) and RouteLLM's OpenAI-compatible server (`routellm[serve]`, its `random` router, which
needs no weights). Targets (issue 35): our routed throughput >= 80% of the router's batched
throughput; our p50 overhead <= the router's single-prompt p50 + 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

BENCH = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from machine import cpu_model  # noqa: E402
from route_latency import batch_throughput, single_latencies  # noqa: E402

BACKEND_SCRIPT = PROJECT_ROOT / "tests" / "openai_backend.py"
# no machine of the bench's needs the internet: LiteLLM reads its bundled model-cost map
OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost"}
LITELLM_KEY = "sk-bench-" + os.urandom(16).hex()  # LiteLLM's proxy refuses to start without a master key
PEERS = {
    "litellm": ["litellm[proxy]"],
    "routellm": ["routellm[serve]"],
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], health: str, log: Path, env: dict[str, str] | None = None, timeout_s: float = 300) -> subprocess.Popen:
    process = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(health, timeout=2).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"{health} did not answer within {timeout_s:g} s: {log.read_text()[-2000:]}")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), children included where they are the server."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found] + [c for p in found for c in _children(int(p))]


async def load(url: str, model: str, prompts: list[str], requests: int, concurrency: int, headers: dict[str, str]) -> dict[str, Any]:
    """`requests` chat completions from `concurrency` clients; latencies in ms, errors counted."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_request = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        for i in next_request:
            body = {"model": model, "messages": [{"role": "user", "content": prompts[i % len(prompts)]}], "max_tokens": 8}
            started = time.perf_counter()
            try:
                response = await http.post(f"{url}/chat/completions", json=body, headers=headers)
                ok = response.status_code == 200 and response.json()["choices"]
                key = None if ok else f"HTTP {response.status_code}"
            except (httpx.HTTPError, ValueError, KeyError) as error:
                key = type(error).__name__
            if key is None:
                latencies.append(1000 * (time.perf_counter() - started))
            else:
                errors[key] = errors.get(key, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    values = np.asarray(latencies)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "ok": int(len(values)),
        "errors": errors,
        "throughput_rps": len(values) / seconds,
        **{f"p{q}_ms": float(np.percentile(values, q)) if len(values) else float("nan") for q in (50, 95, 99)},
    }


def measure(url: str, model: str, prompts: list[str], args: argparse.Namespace, headers: dict[str, str] | None = None) -> dict[str, Any]:
    headers = headers or {}
    asyncio.run(load(url, model, prompts, 50, 1, headers))  # warm-up
    return {
        "sequential": asyncio.run(load(url, model, prompts, args.sequential, 1, headers)),
        "loaded": asyncio.run(load(url, model, prompts, args.requests, args.concurrency, headers)),
    }


def peer_python(name: str, log: Path) -> Path:
    """The peer's own virtual environment under bench/.peers/, created on first use."""
    venv = BENCH / ".peers" / name
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} for {name} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        wheels = os.environ.get("TORCH_WHEELS", "/opt/wheels")
        extra = ["--find-links", wheels] if Path(wheels).is_dir() else []
        with log.open("w") as out:
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *extra, *PEERS[name]], check=True, stdout=out, stderr=subprocess.STDOUT)
    return python


def start_peer(name: str, strong_url: str, weak_url: str, work: Path) -> tuple[subprocess.Popen, str, str, dict[str, str]]:
    """(process, base URL, the model name to request, request headers) for a peer gateway."""
    python = peer_python(name, work / f"{name}-install.log")
    port = free_port()
    if name == "litellm":
        config = work / "litellm.yaml"
        config.write_text(json.dumps({"model_list": [{"model_name": "weak", "litellm_params": {"model": "openai/small-model", "api_base": f"{weak_url}/v1", "api_key": "none"}}]}))
        litellm = python.parent / "litellm"
        process = start([str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                        f"http://127.0.0.1:{port}/health/liveliness", work / "litellm.log", env={**OFFLINE, "LITELLM_MASTER_KEY": LITELLM_KEY})
        return process, f"http://127.0.0.1:{port}/v1", "weak", {"Authorization": f"Bearer {LITELLM_KEY}"}
    # RouteLLM: one base URL for both models (it calls them through LiteLLM)
    process = start([str(python), "-m", "routellm.openai_server", "--routers", "random", "--port", str(port),
                     "--strong-model", "openai/big-model", "--weak-model", "openai/small-model", "--base-url", f"{strong_url}/v1",
                     "--api-key", "none"],
                    f"http://127.0.0.1:{port}/docs", work / "routellm.log", env={"OPENAI_API_KEY": "none", **OFFLINE})
    return process, f"http://127.0.0.1:{port}/v1", "router-random-0.5", {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models:/ragrouter@champion", help="what the gateway serves (the project's store: MLFLOW_TRACKING_URI, default sqlite:///mlruns.db)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--sequential", type=int, default=500, help="requests at concurrency 1 for the overhead percentiles")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--peers", nargs="*", default=["litellm", "routellm"], choices=sorted(PEERS))
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{PROJECT_ROOT / 'mlruns.db'}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "gateway_load"
    work.mkdir(exist_ok=True)

    from ragrouter.data.ingest import ingest_sources
    from ragrouter.data.sources import SourceConfig
    from ragrouter.serving.model_source import ModelSource

    data = PROJECT_ROOT / "data" / "routellm"
    records, _ = ingest_sources([SourceConfig(name="mmlu", kind="routellm_mmlu", path=str(data / "mmlu"), sample_fraction=0.2)])
    prompts = list(records.prompts)
    result: dict[str, Any] = {"cpu": cpu_model(), "model": args.model, "date": time.strftime("%Y-%m-%d")}

    print("the router outside HTTP...", flush=True)
    bundle = ModelSource(args.model).load().bundle
    single = single_latencies(bundle.router.score_prompts, prompts[:300])
    result["router"] = {
        "name": bundle.router.name,
        "single_p50_ms": float(np.median(single)),
        "batched_rps": batch_throughput(bundle.router.score_prompts, prompts[:2000], 32),
    }
    del bundle

    processes: list[subprocess.Popen] = []
    try:
        urls = {}
        for role, name in (("strong", "big-model"), ("weak", "small-model")):
            port = free_port()
            processes.append(start([sys.executable, str(BACKEND_SCRIPT), "--port", str(port), "--name", name], f"http://127.0.0.1:{port}/health", work / f"{role}.log"))
            urls[role] = f"http://127.0.0.1:{port}"
        print("the back-end directly...", flush=True)
        result["direct"] = measure(f"{urls['weak']}/v1", "small-model", prompts, args)

        print("ragrouter serve...", flush=True)
        port = free_port()
        ragrouter = Path(sys.executable).with_name("ragrouter")
        gateway = start([str(ragrouter), "serve", "--model", args.model, "--strong-url", f"{urls['strong']}/v1", "--weak-url", f"{urls['weak']}/v1",
                         "--port", str(port), "--log-level", "warning", "--reload-interval", "0"], f"http://127.0.0.1:{port}/health", work / "gateway.log")
        processes.append(gateway)
        ours = measure(f"http://127.0.0.1:{port}/v1", "router-ragrouter-0.5", prompts, args)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        ours["server_side_non_200"] = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                                          if line.startswith("ragrouter_requests_total{") and 'status="200"' not in line)
        ours["backend_errors"] = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("ragrouter_backend_errors_total{"))
        ours["peak_rss_mb"] = peak_rss_mb(gateway.pid)
        result["ragrouter"] = ours
        gateway.terminate()
        gateway.wait(timeout=30)

        for peer in args.peers:
            print(f"{peer}...", flush=True)
            try:
                process, url, model, headers = start_peer(peer, urls["strong"], urls["weak"], work)
            except (RuntimeError, subprocess.CalledProcessError) as error:
                result[peer] = {"error": str(error)[-500:]}
                continue
            processes.append(process)
            result[peer] = measure(url, model, prompts, args, headers)
            result[peer]["peak_rss_mb"] = peak_rss_mb(process.pid)
            process.terminate()
            process.wait(timeout=30)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()

    direct_p = {q: result["direct"]["sequential"][f"p{q}_ms"] for q in (50, 95, 99)}
    for name in ("ragrouter", *args.peers):
        if "sequential" in result.get(name, {}):
            result[name]["overhead_ms"] = {f"p{q}": result[name]["sequential"][f"p{q}_ms"] - direct_p[q] for q in (50, 95, 99)}
    ours = result["ragrouter"]
    result["targets"] = {
        "throughput_ratio_to_batched_router": ours["loaded"]["throughput_rps"] / result["router"]["batched_rps"],
        "p50_overhead_minus_router_single_p50_ms": ours["overhead_ms"]["p50"] - result["router"]["single_p50_ms"],
    }
    (args.out / "gateway_load.json").write_text(json.dumps(result, indent=2))
    (args.out / "gateway_load.md").write_text(report(result, args))
    print(report(result, args))
    return 0


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"# Gateway load test, {result['date']}, {result['cpu']}",
        "",
        f"Router `{result['router']['name']}` ({result['model']}) outside HTTP: single prompt p50 "
        f"{result['router']['single_p50_ms']:.1f} ms, batched {result['router']['batched_rps']:.0f} queries/s.",
        f"Overhead: latency at concurrency 1 ({args.sequential} requests) minus the direct back-end call's; "
        f"throughput: {args.requests} requests at concurrency {args.concurrency}.",
        "",
        "| gateway | overhead p50 / p95 / p99 (ms) | throughput (req/s) | errors (client) | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    direct = result["direct"]
    lines.append(f"| back-end directly | ({direct['sequential']['p50_ms']:.1f} / {direct['sequential']['p95_ms']:.1f} / {direct['sequential']['p99_ms']:.1f} latency) | "
                 f"{direct['loaded']['throughput_rps']:.0f} | {sum(direct['loaded']['errors'].values())} | |")
    for name in ("ragrouter", *args.peers):
        entry = result.get(name, {})
        if "error" in entry or not entry:
            lines.append(f"| {name} | did not run: {entry.get('error', 'skipped')[:120]} | | | |")
            continue
        o = entry["overhead_ms"]
        errors = sum(entry["loaded"]["errors"].values()) + sum(entry["sequential"]["errors"].values())
        lines.append(f"| {name} | {o['p50']:.1f} / {o['p95']:.1f} / {o['p99']:.1f} | {entry['loaded']['throughput_rps']:.0f} | {errors} | {entry['peak_rss_mb']:.0f} |")
    t = result["targets"]
    ours = result["ragrouter"]
    lines += [
        "",
        f"Ours, server side: {ours['server_side_non_200']:.0f} non-200 answers, {ours['backend_errors']:.0f} back-end errors.",
        f"Targets: routed throughput / batched router throughput = {t['throughput_ratio_to_batched_router']:.2f} (>= 0.80); "
        f"p50 overhead - router single p50 = {t['p50_overhead_minus_router_single_p50_ms']:+.1f} ms (<= +5 ms).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
