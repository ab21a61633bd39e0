"""QLoRA speed and memory of `ragrouter_llm` at the design's size, on a GPU.

    python bench/qlora_gpu.py [--layers 28] [--train 512] [--score 512] [--set key=value] [--out bench/results]

Where no hub is reachable, Qwen2.5-7B-Instruct's *shape* is built with random weights, saved,
and loaded the way `configs/qlora_qwen7b_gpu.yaml` loads the real model (NF4 with double
quantization, bf16 compute, gradient checkpointing, LoRA r=16 on the attention projections,
k=4 neighbours of 96 tokens in a 1024-token prompt). The prompts are real MMLU questions; the
tokenizer is a byte-level BPE trained on them and the retrieval encoder a tiny model built here,
so prompt lengths are realistic. It measures time and memory, not routing quality (the weights
are random). Writes bench/results/qlora_gpu.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GPU_CONFIG = PROJECT_ROOT / "configs" / "qlora_qwen7b_gpu.yaml"
# Qwen2.5-7B-Instruct's config.json, less its 152k vocabulary (the tokenizer here is trained on MMLU).
QWEN25_7B = {
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def mmlu_training_set():
    from ragrouter.data.ingest import ingest_sources
    from ragrouter.data.sources import SourceConfig
    from ragrouter.routers import Queries, TrainingSet

    source = SourceConfig(
        name="mmlu", kind="routellm_mmlu", path=str(PROJECT_ROOT / "data/routellm/mmlu"), conflicting_duplicates="drop"
    )
    records, _ = ingest_sources([source])
    frame = records.frame
    return TrainingSet(Queries(frame["prompt"].tolist()), (frame["strong_quality"] - frame["weak_quality"]).to_numpy())


def build_models(prompts: list[str], layers: int, folder: Path) -> tuple[Path, Path]:
    """The 7B-shaped base (random bf16 weights, made on the GPU) and a tiny encoder, sharing a
    BPE tokenizer trained on the prompts."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=32000, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(prompts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    base, encoder = folder / "base", folder / "encoder"
    for path, shape in ((base, {**QWEN25_7B, "num_hidden_layers": layers}), (encoder, {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2})):
        tokenizer.save_pretrained(path)
        torch.manual_seed(0)
        with torch.device("cuda" if path == base else "cpu"):
            model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), **shape)).to(torch.bfloat16 if path == base else torch.float32)
        model.save_pretrained(path)
        del model
    torch.cuda.empty_cache()
    return base, encoder


def unpacked_numel(parameter) -> int:
    """Elements of a parameter as the model defines it (an NF4 one stores two per byte)."""
    quant_state = getattr(parameter, "quant_state", None)
    return int(np.prod(quant_state.shape)) if quant_state is not None else parameter.numel()


def timed(method, name: str, phases: dict[str, float]):
    """`method`, adding its wall time to phases[name]: the fit's stages without editing it."""

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=QWEN25_7B["num_hidden_layers"], help="decoder layers (28 = Qwen2.5-7B)")
    parser.add_argument("--train", type=int, default=512, help="training queries fine-tuned on (one epoch)")
    parser.add_argument("--score", type=int, default=512, help="held-out queries scored")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the GPU config's ragrouter_llm settings (YAML values)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    args = parser.parse_args()
    sys.path.insert(0, str(PROJECT_ROOT))
    import torch

    from ragrouter.routers import Queries, TrainingSet, build_router

    if not torch.cuda.is_available():
        raise SystemExit("bench/qlora_gpu.py needs a CUDA device")
    data = mmlu_training_set()
    order = np.random.default_rng(0).permutation(len(data.gain))
    held_out = order[: args.score]
    train_rows = order[args.score :]
    train = TrainingSet(Queries([data.queries.prompts[i] for i in train_rows]), data.gain[train_rows])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        base, encoder = build_models(list(data.queries.prompts), args.layers, Path(tmp))
        built_s = time.perf_counter() - started
        print(f"built and saved the {args.layers}-layer base in {built_s:.0f} s", flush=True)
        router_config = yaml.safe_load(GPU_CONFIG.read_text())["parameters"]["routers"]["ragrouter_llm"]
        router_config |= {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
        router_config |= {"model": str(base), "encoder": {"name": str(encoder)}, "revision": None, "max_train_queries": args.train, "epochs": 1}
        router = build_router("ragrouter_llm", router_config)
        train.queries.vectors(router.config.encoder)  # the retrieval embeddings, outside the timed fit
        phases: dict[str, float] = {}
        router._prepare_model = timed(router._prepare_model, "load_nf4_s", phases)
        router._validate = timed(router._validate, "validate_s", phases)
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        router.fit(train)  # loads the base in NF4, retrieves for every query, fine-tunes on `--train`
        fit_s = time.perf_counter() - started
        train_peak = torch.cuda.max_memory_allocated() / 2**30
        prompts = [data.queries.prompts[i] for i in held_out]
        inputs = router.lm_.encode(prompts, router._contexts(Queries(prompts).vectors(router.config.encoder)))
        torch.cuda.synchronize()
        started = time.perf_counter()
        router.lm_.score_inputs(inputs)
        torch.cuda.synchronize()
        score_s = time.perf_counter() - started
    steps = int(np.ceil(args.train * (1 - router.config.validation_fraction) / router.config.batch_size))
    result = {
        "gpu": torch.cuda.get_device_name(),
        "shape": {**QWEN25_7B, "num_hidden_layers": args.layers, "vocab_size": len(router.lm_.tokenizer)},
        "parameters_b": round(sum(unpacked_numel(p) for p in router.lm_.model.parameters()) / 1e9, 2),
        "router": {k: router_config.get(k) for k in ("k", "neighbour_tokens", "max_tokens", "lora_r", "batch_size", "learning_rate", "max_grad_norm", "compute_dtype")},
        "training_queries": len(train.gain),
        "fine_tuned_queries": args.train,
        "build_and_save_s": round(built_s, 1),
        "fit_s": round(fit_s, 1),
        **{name: round(seconds, 1) for name, seconds in phases.items()},
        "fine_tune_s": round(fit_s - sum(phases.values()), 1),
        "optimizer_steps": steps,
        "s_per_step": round((fit_s - sum(phases.values())) / steps, 3),
        "train_loss": router.history_[0]["train_loss"],
        "prompt_tokens_mean": float(np.mean([len(ids) for ids in inputs])),
        "train_peak_gib": round(train_peak, 2),
        "scored_queries": len(inputs),
        "score_s": round(score_s, 2),
        "score_queries_per_s": round(len(inputs) / score_s, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "qlora_gpu.json").write_text(json.dumps(result, indent=2))
    rows = "\n".join(f"| {key} | {value} |" for key, value in result.items())
    (args.out / "qlora_gpu.md").write_text(f"| measure | value |\n| --- | --- |\n{rows}\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
