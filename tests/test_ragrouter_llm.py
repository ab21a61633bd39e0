"""ragrouter_llm on the tiny Qwen2 built on the fly: retrieved context in the prompt, LoRA
training that touches only adapters and label rows, learning with and without context, reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from test_causal_llm_router import _auc, _prompts, _train_set, tiny_model  # noqa: F401  (fixture)
from ragrouter.routers import Queries, build_router, load_router
from ragrouter.routers.ragrouter_llm import CONTEXT_HEADER

TINY = {"k": 2, "neighbour_tokens": 8, "max_tokens": 128, "epochs": 6, "batch_size": 16, "learning_rate": 1e-2, "lora_r": 4, "lora_alpha": 8}


def _router(tiny_model: Path, **overrides):
    return build_router("ragrouter_llm", {"model": str(tiny_model), **TINY, **overrides})


@pytest.fixture(scope="module")
def trained(tiny_model: Path):
    return _router(tiny_model).fit(_train_set())


def test_context_holds_the_nearest_other_queries_with_their_labels(trained):
    train = _train_set()
    prompts = list(train.queries.prompts)
    contexts = trained._contexts(train.queries.vectors(trained.config.encoder), exclude_self=True)
    text = trained.lm_.tokenizer.decode(contexts[0])
    assert text.startswith(CONTEXT_HEADER)
    assert text.count(" -> large needed") + text.count(" -> small suffices") == 2
    own = trained.lm_.tokenizer.decode(trained.neighbour_ids_[0])  # the query's first neighbour_tokens
    assert own not in text  # leave-one-out: the query is not its own neighbour
    served = trained.lm_.tokenizer.decode(trained._contexts(Queries(prompts[:1]).vectors(trained.config.encoder))[0])
    assert served.startswith(CONTEXT_HEADER + own)  # as unseen traffic, it is its own nearest
    full = trained.lm_.tokenizer.decode(trained.lm_.encode(prompts[:1], contexts[:1])[0])
    assert full.index(CONTEXT_HEADER) < full.index("[Question]") < full.index(prompts[0])


def test_lora_trains_only_adapters_and_label_rows(tiny_model, trained):
    base = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    state = trained.lm_.model.state_dict()
    adapters = [name for name in state if "lora_" in name]
    assert adapters and all(any(t in name for t in ("q_proj", "k_proj", "v_proj", "o_proj")) for name in adapters)
    for name, weight in base.items():
        if name in state and weight.shape == state[name].shape:
            torch.testing.assert_close(state[name], weight, msg=f"{name} changed")
    assert len(trained.history_) == TINY["epochs"] and {"train_loss", "val_loss", "val_apgr"} <= set(trained.history_[0])


def test_a_fine_tuning_sample_still_retrieves_from_every_training_query(tiny_model):
    train = _train_set()
    router = _router(tiny_model, max_train_queries=40, epochs=1).fit(train)
    assert router.index_.ntotal == len(router.neighbour_ids_) == len(router.strong_) == len(train.queries) > 40
    np.testing.assert_array_equal(router.strong_, train.gain > train.label_threshold)


@pytest.mark.parametrize("k", [2, 0])
def test_learns_held_out_prompts_with_and_without_retrieved_context(tiny_model, k):
    router = _router(tiny_model, k=k).fit(_train_set())
    prompts, hard = _prompts(80, seed=7)
    assert _auc(router.score(Queries(prompts)), hard.astype(bool)) > 0.8


def test_adapter_reload_scores_identically(trained, tmp_path):
    prompts, _ = _prompts(20, seed=3)
    trained.save(tmp_path / "router")
    files = {p.name for p in (tmp_path / "router" / "adapter").iterdir()}
    assert "adapter.safetensors" in files and not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    reloaded = load_router(tmp_path / "router")
    np.testing.assert_allclose(reloaded.score(Queries(prompts)), trained.score(Queries(prompts)), atol=1e-5)


def test_top_layers_trained_in_full_beside_lora_are_saved_and_reloaded(tiny_model, tmp_path):
    router = _router(tiny_model, train_last_layers=1, epochs=2).fit(_train_set(64))
    top = len(router.lm_.model.base_model.layers) - 1
    assert router.full_layers_ and all(f"layers.{top}." in name or ".norm." in name for name in router.full_layers_)
    base = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    changed = [name for name in router.full_layers_ if name in base and not torch.equal(base[name], router.lm_.model.state_dict()[name])]
    assert changed  # the top layer really trained
    router.save(tmp_path / "router")
    prompts, _ = _prompts(20, seed=3)
    reloaded = load_router(tmp_path / "router")
    np.testing.assert_allclose(reloaded.score(Queries(prompts)), router.score(Queries(prompts)), atol=1e-5)


@pytest.fixture(scope="module")
def wider_tiny_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen2 with 128-wide layers: bitsandbytes' CPU 4-bit kernels need blocks of 64."""
    import shutil

    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-qwen2-128")
    shutil.copytree(tiny_model, folder, dirs_exist_ok=True)
    config = Qwen2Config.from_pretrained(tiny_model)
    config.hidden_size, config.intermediate_size = 128, 256
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def test_qlora_loads_the_base_in_nf4_and_trains_float32_adapters_under_bf16_compute(wider_tiny_model, tmp_path):
    """The QLoRA path on CPU (bitsandbytes NF4, double quantization, bf16 compute)."""
    import bitsandbytes as bnb

    router = _router(wider_tiny_model, load_in_4bit=True, compute_dtype="bfloat16", gradient_checkpointing=True, epochs=2).fit(_train_set(64))
    layers = [m for m in router.lm_.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    quantization = router.lm_.model.config.quantization_config
    assert layers and all(m.weight.quant_type == "nf4" for m in layers) and router.lm_.model.is_activation_checkpointing
    adapters = [p for name, p in router.lm_.model.named_parameters() if "lora_" in name]
    assert adapters and all(p.dtype == torch.float32 for p in adapters)  # bf16 compute, float32 weights
    assert quantization.bnb_4bit_use_double_quant and quantization.bnb_4bit_compute_dtype == torch.bfloat16
    assert "val_loss" not in router.history_[0] and "val_loss" in router.history_[-1]
    prompts, _ = _prompts(10, seed=5)
    scores = router.score(Queries(prompts))
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()
    router.save(tmp_path / "qlora")
    np.testing.assert_allclose(load_router(tmp_path / "qlora").score(Queries(prompts)), scores, atol=1e-2)


def test_a_long_context_is_cut_so_the_query_keeps_half_the_room(tiny_model):
    router = _router(tiny_model, max_tokens=64, epochs=0).fit(_train_set(8))
    prefix, middle, suffix = router.lm_._template()
    room = 64 - len(prefix) - len(middle) - len(suffix)
    query = router.lm_.tokenizer(" ".join(["w1"] * 100), add_special_tokens=False)["input_ids"]
    (ids,) = router.lm_.encode([" ".join(["w1"] * 100)], [list(range(5, 205))])
    assert len(ids) == 64
    assert ids[len(prefix) : len(prefix) + room - room // 2] == list(range(5, 5 + room - room // 2))
    assert ids[len(ids) - len(suffix) - room // 2 : len(ids) - len(suffix)] == query[-(room // 2) :]


def test_the_gpu_config_builds_a_qlora_router_and_asks_for_a_gpu_where_it_trains_and_scores():
    import yaml

    from ragrouter.config import RunConfig

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "qlora_qwen7b_gpu.yaml").read_text())
    run = RunConfig.from_dict(config["parameters"])  # no weights load here
    router = run.candidate.config
    assert router.load_in_4bit and router.compute_dtype == "bfloat16" and router.gradient_checkpointing
    assert router.max_grad_norm == 0.3 and router.encoder == run.encoder  # the retrieval encoder is the run's
    assert router.model == "Qwen/Qwen2.5-7B-Instruct" and run.candidate.name == "ragrouter_llm"
    for step in ("score_ragrouter_llm", "train_router"):
        assert config["steps"][step]["settings"]["resources"]["gpu_count"] == 1


def test_lora_layers_puts_adapters_in_the_top_layers_only(tiny_model):
    router = _router(tiny_model, lora_layers=1, epochs=1).fit(_train_set(32))
    top = len(router.lm_.model.base_model.layers) - 1
    adapters = [name for name, _ in router.lm_.model.named_parameters() if "lora_" in name]
    assert adapters and all(f"layers.{top}." in name for name in adapters)
    with pytest.raises(ValueError, match="lora_layers"):
        _router(tiny_model, lora_layers=0)
