"""The BERT classifier router on a tiny BERT built from a config (seconds), and the packaged MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ragrouter.routers import Queries, TrainingSet, build_router, load_router
from ragrouter.labels import outcome_class

WORDS = "easy hard what is the sum of two and three prove explain name a colour city capital".split()


def _prompts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Prompts with "hard" need the strong model (gain 1); the others do not (gain 0 or -1)."""
    rng = np.random.default_rng(seed)
    prompts, gains = [], []
    for _ in range(n):
        hard = rng.random() < 0.5
        words = list(rng.choice(WORDS[2:], size=6)) + ["hard" if hard else "easy"]
        rng.shuffle(words)
        prompts.append(" ".join(words))
        gains.append(1.0 if hard else rng.choice([0.0, -1.0]))
    return prompts, np.array(gains)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3)
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _config(folder: Path, **overrides) -> dict:
    return {"model": str(folder), "epochs": 8, "batch_size": 16, "learning_rate": 3e-3, "max_tokens": 16, **overrides}


def test_outcome_classes_follow_routellm():
    np.testing.assert_array_equal(outcome_class(np.array([1.0, 0.5, 0.0])), [0, 1, 2])


def test_bert_router_learns_which_prompts_need_the_strong_model(tiny_bert, tmp_path):
    prompts, gain = _prompts(160, 0)
    router = build_router("bert", _config(tiny_bert)).fit(TrainingSet(Queries(prompts), gain))
    test_prompts, test_gain = _prompts(80, 1)
    scores = router.score(Queries(test_prompts))
    assert ((scores >= 0) & (scores <= 1)).all()
    assert roc_auc_score(test_gain > 0, scores) > 0.9

    router.save(tmp_path / "bert")
    assert not list(tmp_path.rglob("*.bin")) and list(tmp_path.rglob("*.safetensors"))
    np.testing.assert_allclose(load_router(tmp_path / "bert").score(Queries(test_prompts)), scores, atol=1e-6)
    again = build_router("bert", _config(tiny_bert)).fit(TrainingSet(Queries(prompts), gain))
    np.testing.assert_allclose(again.score(Queries(test_prompts)), scores, atol=1e-6)


def test_frozen_layers_do_not_change(tiny_bert):
    prompts, gain = _prompts(32, 2)
    router = build_router("bert", _config(tiny_bert, epochs=1, train_last_layers=1))
    router.fit(TrainingSet(Queries(prompts), gain))
    from transformers import AutoModelForSequenceClassification

    initial = AutoModelForSequenceClassification.from_pretrained(tiny_bert).state_dict()
    trained = router.model_.state_dict()
    frozen = [k for k in trained if ".embeddings." in k or ".layer.0." in k]
    moved = [k for k in trained if ".layer.1." in k]
    assert frozen and all((trained[k] == initial[k]).all() for k in frozen)
    assert any((trained[k] != initial[k]).any() for k in moved)


def test_the_packaged_minilm_fine_tunes_offline():
    prompts, gain = _prompts(16, 3)
    router = build_router("bert", {"batch_size": 16, "max_tokens": 16, "train_last_layers": 1})
    scores = router.fit(TrainingSet(Queries(prompts), gain)).score_prompts(["what is the capital city"])
    assert 0 <= scores[0] <= 1


def test_bfloat16_autocast_scores_as_float32_does_to_its_precision(tiny_bert):
    prompts, gain = _prompts(160, 0)
    router = build_router("bert", _config(tiny_bert, compute_dtype="bfloat16")).fit(TrainingSet(Queries(prompts), gain))
    test_prompts = Queries(_prompts(80, 1)[0])
    in_bfloat16 = router.score(test_prompts)
    router.config.compute_dtype = "float32"
    in_float32 = router.score(test_prompts)
    assert not np.array_equal(in_bfloat16, in_float32)  # autocast really ran
    np.testing.assert_allclose(in_bfloat16, in_float32, atol=0.02)
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        build_router("bert", {"compute_dtype": "float16"})
