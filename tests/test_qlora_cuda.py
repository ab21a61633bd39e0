"""The QLoRA path where it is meant to run: an NF4 base on a CUDA device, float32 LoRA adapters under bf16 compute.

Skipped without a GPU (CI has none). On a GPU, every epoch validates (on CPU a 4-bit base
validates at the end only), the router learns held-out prompts and reloads onto the GPU with the
same scores. The tiny Qwen2 is its own retrieval encoder, so the test needs no packaged weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from test_causal_llm_router import _auc, _prompts, _train_set, tiny_model  # noqa: F401  (fixture)
from test_ragrouter_llm import TINY, wider_tiny_model  # noqa: F401  (fixture)
from ragrouter.routers import Queries, build_router, load_router

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def qlora_router(wider_tiny_model: Path):
    config = {**TINY, "model": str(wider_tiny_model), "encoder": {"name": str(wider_tiny_model)}, "device": "cuda"}
    config |= {"load_in_4bit": True, "compute_dtype": "bfloat16", "gradient_checkpointing": True, "epochs": 8, "learning_rate": 3e-3}
    return build_router("ragrouter_llm", config).fit(_train_set(320))


def test_the_base_is_nf4_on_the_gpu_and_only_the_adapters_train(qlora_router):
    import bitsandbytes as bnb

    model = qlora_router.lm_.model
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.weight.quant_type == "nf4" and m.weight.device.type == "cuda" for m in layers)
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    assert model.config.quantization_config.bnb_4bit_compute_dtype == torch.bfloat16
    adapters = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert adapters and all(p.device.type == "cuda" and p.dtype == torch.float32 for p in adapters.values())
    assert not any(m.weight.requires_grad for m in layers)


def test_every_epoch_validates_and_the_router_learns_held_out_prompts(qlora_router):
    history = qlora_router.history_
    assert len(history) == 8 and all({"train_loss", "val_loss", "val_apgr"} <= set(epoch) for epoch in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    prompts, hard = _prompts(200, seed=7)
    assert _auc(qlora_router.score(Queries(prompts)), hard.astype(bool)) > 0.8


def test_the_saved_adapter_reloads_onto_the_gpu_with_the_same_scores(qlora_router, tmp_path):
    prompts, _ = _prompts(40, seed=3)
    qlora_router.save(tmp_path / "qlora")
    reloaded = load_router(tmp_path / "qlora")
    assert next(reloaded.lm_.model.parameters()).device.type == "cuda"
    np.testing.assert_allclose(reloaded.score(Queries(prompts)), qlora_router.score(Queries(prompts)), atol=1e-3)
