"""Routing latency through the registered MLflow pyfunc: RAGRouter beside knn and the encoder alone.

    python bench/route_latency.py [--sample 0.2] [--queries 200] [--batch 256] [--out bench/results]

Trains `ragrouter` (with its default `auto` encoder precision, bfloat16 on CPUs with bfloat16
units and float32 elsewhere, and with `encoder: {dtype: qint8}`) and
`knn` on a deterministic sample of MMLU + GSM8K, registers them in a fresh MLflow store, loads
them back as pyfuncs (what `mlflow models serve` runs) and routes held-out prompts: one at a
time (p50, p95 in ms) and in batches (queries/s). The encoder alone (sentence embedding of the
same prompts, in both dtypes) and RAGRouter's stages (parse, token states) are timed in the
same run, so the numbers read as ratios on this machine; the results name the precision `auto`
resolved to.
It also bounds what any implementation of the same parts could reach here: the encoder's
arithmetic on these prompts (from its config and their token counts) at this machine's
measured matrix-product peak in each precision, plus the parse's measured core time, with
parse and encoder overlapping perfectly on all cores.
Targets (DESIGN.md, 2-core CPU): p50 <= 15 ms single, >= 300 queries/s batched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def single_latencies(route: Callable[[list[str]], object], prompts: Sequence[str], warmup: int = 50) -> np.ndarray:
    """Milliseconds per prompt routed alone, after `warmup` prompts (the first hundred or so
    calls of a fresh pyfunc run ~30% slower)."""
    for prompt in prompts[:warmup]:
        route([prompt])
    times = []
    for prompt in prompts:
        started = time.perf_counter()
        route([prompt])
        times.append(1000 * (time.perf_counter() - started))
    return np.array(times)


def batch_throughput(route: Callable[[list[str]], object], prompts: Sequence[str], batch: int) -> float:
    """Queries per second routing `prompts` in batches of `batch`."""
    route(list(prompts[:batch]))  # warm-up
    started = time.perf_counter()
    for start in range(0, len(prompts), batch):
        route(list(prompts[start : start + batch]))
    return len(prompts) / (time.perf_counter() - started)


def matmul_peak(dtype: str, threads: int) -> float:
    """Operations per second of one large product through a linear layer cast as the encoder's
    are (`cast_encoder`) on `threads` torch threads: no encoder layer runs faster here."""
    import torch

    from ragrouter.encoder import cast_encoder

    torch.set_num_threads(threads)
    layer = cast_encoder(torch.nn.Sequential(torch.nn.Linear(1024, 1024)), dtype)
    inputs = torch.randn(4096, 1024, dtype=torch.float32 if dtype == "qint8" else getattr(torch, dtype))
    repeats = 20
    with torch.inference_mode():
        for _ in range(3):
            layer(inputs)
        started = time.perf_counter()
        for _ in range(repeats):
            layer(inputs)
    return 2 * 4096 * 1024 * 1024 * repeats / (time.perf_counter() - started)


def encoder_operations(config, tokens: np.ndarray) -> np.ndarray:
    """Multiply-adds x 2 of a BERT-style encoder on prompts of `tokens` tokens: per layer the
    attention projections (4 d^2), the feed-forward (2 d f) per token, and the attention scores
    and mix (2 T d each) per token pair."""
    d, f = config.hidden_size, config.intermediate_size
    return config.num_hidden_layers * (2 * tokens * (4 * d * d + 2 * d * f) + 4 * tokens**2 * d)


def arithmetic_bounds(operations: np.ndarray, batched_operations: np.ndarray, parse_ms: np.ndarray, parse_per_s: float, peak: float, cores: int) -> dict:
    """The best p50 and queries/s that parsing plus encoding could reach at `peak` operations per
    second on `cores` cores: the encoder's core time at the peak added to the parse's measured
    core time, spread over all cores (the parse itself is single-threaded)."""
    encoder_core_ms = 1000 * operations * cores / peak
    single_ms = np.maximum(parse_ms, (encoder_core_ms + parse_ms) / cores)
    batched_core_s = np.mean(batched_operations) * cores / peak + 1 / parse_per_s
    return {
        "peak_ops_per_s": peak,
        "encoder_alone_p50_ms": float(np.median(encoder_core_ms / cores)),
        "encoder_alone_queries_per_s": float(peak / np.mean(batched_operations)),
        "p50_ms": float(np.median(single_ms)),
        "queries_per_s": float(cores / batched_core_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=float, default=0.2, help="fraction of each source used for training")
    parser.add_argument("--queries", type=int, default=200, help="held-out prompts routed one at a time")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ragrouter-latency-"))
    os.environ.update({"MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow.db'}", "HF_HUB_OFFLINE": "1"})
    os.chdir(PROJECT_ROOT)
    sys.path.insert(0, str(PROJECT_ROOT))
    import mlflow
    import pandas as pd
    import torch

    from ragrouter.bundle import RouterBundle
    from ragrouter.data.ingest import ingest_sources
    from ragrouter.data.sources import SourceConfig
    from ragrouter.encoder import Encoder, EncoderConfig, load_encoder
    from ragrouter.features.query_features import ServingThreads, extract_features
    from ragrouter.features.syntax import parse_graphs
    from ragrouter.labels import gains
    from ragrouter.precision import auto_precision
    from ragrouter.registry.model_registry import register_bundle
    from ragrouter.registry.tracking import configure_tracking, use_experiment
    from ragrouter.routers import Queries, TrainingSet, build_router

    if args.threads:
        torch.set_num_threads(args.threads)
    sources = [
        {"name": "mmlu", "kind": "routellm_mmlu", "path": "data/routellm/mmlu", "conflicting_duplicates": "drop"},
        {"name": "gsm8k", "kind": "routellm_gsm8k", "path": "data/routellm/gsm8k/gsm8k_responses.csv"},
    ]
    records, _ = ingest_sources([SourceConfig.from_dict(s, "sources") for s in sources])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(records))
    n_train = int(args.sample * len(records))
    train_rows, held_out = order[:n_train], order[n_train:]
    prompts = records.prompts
    train = TrainingSet(Queries([prompts[i] for i in train_rows]), gains(records)[train_rows], 0.0)
    single = [prompts[i] for i in held_out[: args.queries]]
    batched = [prompts[i] for i in held_out[args.queries : args.queries + 4 * args.batch]]

    configure_tracking()
    use_experiment("route-latency")  # registered models' files beside the temporary store
    default_threads = torch.get_num_threads()
    models = {}
    for name, router_name, config in (("ragrouter", "ragrouter", {}), ("ragrouter-qint8", "ragrouter", {"encoder": {"dtype": "qint8"}}), ("knn", "knn", {"k": 50})):
        started = time.perf_counter()
        router = build_router(router_name, config).fit(train)
        print(f"trained {name} on {n_train} prompts in {time.perf_counter() - started:.0f} s", flush=True)
        with mlflow.start_run():
            version = register_bundle(RouterBundle(router, 0.5, 0.5, {"models": {"strong": "strong", "weak": "weak"}}), f"latency-{name}", {})
        pyfunc = mlflow.pyfunc.load_model(f"models:/latency-{name}/{version}")
        models[name] = lambda batch, m=pyfunc: m.predict(pd.DataFrame({"prompt": batch}))

    # a served model sets its process up when it loads (RAGRouter leaves a core to its parser
    # until a batch is parsed); each route is timed with the torch threads its own server would have
    serving = ServingThreads(parsing=torch.get_num_threads(), parsed=default_threads)
    encoder = Encoder()
    ragrouter_config = build_router("ragrouter").config.features()
    routes: dict[str, tuple[Callable[[list[str]], object], ServingThreads]] = {
        "ragrouter (pyfunc)": (models["ragrouter"], serving),
        "ragrouter, qint8 encoder (pyfunc)": (models["ragrouter-qint8"], serving),
        "knn (pyfunc)": (models["knn"], ServingThreads(default_threads, default_threads)),
        "encoder alone": (encoder.embed, ServingThreads(default_threads, default_threads)),
        "encoder alone, qint8": (Encoder(EncoderConfig(dtype="qint8")).embed, ServingThreads(default_threads, default_threads)),
        "ragrouter stage: parse": (lambda batch: parse_graphs(batch, ragrouter_config.parse), serving),
        "ragrouter stage: parse + token states": (lambda batch: extract_features(batch, ragrouter_config, threads=serving), serving),
    }
    rows, single_ms = [], {}
    for label, (route, serving_threads) in routes.items():
        serving_threads.set("parsing")
        threads = f"{serving_threads.parsing}, {serving_threads.parsed} once parsed" if serving_threads.parsing != serving_threads.parsed else str(serving_threads.parsing)
        latencies = single_ms[label] = single_latencies(route, single)
        throughput = batch_throughput(route, batched, args.batch)
        rows.append({"route": label, "torch_threads": threads, "p50_ms": float(np.percentile(latencies, 50)), "p95_ms": float(np.percentile(latencies, 95)), "queries_per_s": throughput})
        print(f"{label:40s} p50 {rows[-1]['p50_ms']:7.2f} ms  p95 {rows[-1]['p95_ms']:7.2f} ms  {throughput:8.1f} q/s  ({threads} torch threads)", flush=True)

    encoder_row = next(r for r in rows if r["route"] == "encoder alone")
    for row in rows:
        row["p50_vs_encoder"] = row["p50_ms"] / encoder_row["p50_ms"]
        row["throughput_vs_encoder"] = row["queries_per_s"] / encoder_row["queries_per_s"]
    _, token_encoder = load_encoder(ragrouter_config.encoder.name, ragrouter_config.encoder.computed_dtype)  # the one loaded above

    def operations(batch: list[str]) -> np.ndarray:
        tokens = np.array([len(ids) for ids in encoder.tokenize(batch).ids])
        return encoder_operations(token_encoder.config, tokens)

    parse_row = next(r for r in rows if r["route"] == "ragrouter stage: parse")
    bounds = {
        dtype: arithmetic_bounds(operations(single), operations(batched), single_ms["ragrouter stage: parse"], parse_row["queries_per_s"], matmul_peak(dtype, default_threads), default_threads)
        for dtype in (auto_precision(), "qint8")
    }
    result = {
        "train_prompts": n_train,
        "single_prompts": len(single),
        "batched_prompts": len(batched),
        "batch": args.batch,
        "mean_prompt_chars": float(np.mean([len(p) for p in single])),
        "auto_precision": auto_precision(),
        "targets": {"p50_ms": 15, "queries_per_s": 300},
        "routes": rows,
        "arithmetic_bounds": bounds,
    }
    out = PROJECT_ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "route_latency.json").write_text(json.dumps(result, indent=2))
    lines = ["| route | p50 ms | p95 ms | queries/s | p50 / encoder | q/s / encoder | torch threads |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r['route']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['queries_per_s']:.0f} | {r['p50_vs_encoder']:.2f} | {r['throughput_vs_encoder']:.2f} | {r['torch_threads']} |"
        for r in rows
    ]
    lines.append(f"\n`auto` precision on this machine: {auto_precision()}")
    lines += [
        "\nBest reachable on this machine (parse as measured, encoder at the measured matrix-product peak, perfect overlap on all cores):\n",
        "| precision | peak Gop/s | encoder alone p50 ms | encoder alone queries/s | parse + encoder p50 ms | parse + encoder queries/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {dtype} | {b['peak_ops_per_s'] / 1e9:.0f} | {b['encoder_alone_p50_ms']:.1f} | {b['encoder_alone_queries_per_s']:.0f} | {b['p50_ms']:.1f} | {b['queries_per_s']:.0f} |"
        for dtype, b in bounds.items()
    ]
    (out / "route_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
