from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragrouter.bundle import RouterBundle, calibrate_threshold
from ragrouter.config import RunConfig
from ragrouter.retrieval import build_index, search
from ragrouter.routers import ROUTERS, Queries, Router, TrainingSet, build_router, load_router, register_router, router_names
from ragrouter.routers.saved_configs import upgrade_saved_config
from ragrouter.typed_config import ConfigError
from ragrouter_cli import run_parameters
from support import vector_features


def _unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _training_set(n: int = 60, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, n)
    gain = rng.choice([-1.0, 0.0, 1.0], size=n)
    return TrainingSet(Queries([f"q{i}" for i in range(n)], vector_features(vectors)), gain)


def test_knn_with_one_neighbour_reproduces_that_neighbours_outcome():
    train = _training_set()
    router = build_router("knn", {"k": 1}).fit(train)
    # Querying with the training vectors themselves: the nearest neighbour is the query.
    scores = router.score(Queries(train.queries.prompts, train.queries.features))
    np.testing.assert_allclose(scores, (train.gain + 1) / 2)


def test_knn_leave_one_out_never_sees_the_query_itself():
    train = _training_set()
    router = build_router("knn", {"k": 1}).fit(train)
    loo = router.score_training(train)
    sims, idx = search(router.index_, train.queries.features.pooled, 1, exclude_self=True)
    assert not (idx[:, 0] == np.arange(len(train.gain))).any()
    np.testing.assert_allclose(loo, (train.gain[idx[:, 0]] + 1) / 2)


def test_knn_score_is_the_similarity_weighted_mean_gain():
    train = _training_set(n=30, seed=1)
    router = build_router("knn", {"k": 5}).fit(train)
    query = _unit(np.random.default_rng(7), 1)
    sims, idx = router.index_.search(query, 5)
    w = np.clip(sims[0], 0, None)
    expected = (np.sum(w * train.gain[idx[0]]) / w.sum() + 1) / 2
    np.testing.assert_allclose(router.score(Queries(["new"], vector_features(query))), [expected], rtol=1e-6)


def test_knn_remembers_outcomes_without_retraining_and_keeps_them_through_save_and_load(tmp_path):
    train = _training_set(n=60, seed=2)
    router = build_router("knn", {"k": 5}).fit(train)
    rng = np.random.default_rng(3)
    seen = _unit(rng, 2)
    near = seen + 0.1 * _unit(rng, 2)  # near-duplicates of the remembered queries
    near = Queries(["like the first", "like the second"], vector_features(near / np.linalg.norm(near, axis=1, keepdims=True)))
    before = router.score(near)
    assert router.remember(Queries(["strong helped", "weak was better"], vector_features(seen)), np.array([1.0, -1.0]))
    after = router.score(near)
    assert router.knowledge_size == 62 and after[0] > before[0] + 0.05 and after[1] < before[1] - 0.05, (before, after)
    assert router.remember(Queries([]), np.zeros(0)) and router.knowledge_size == 62  # nothing to add: unchanged
    router.save(tmp_path / "knn")
    loaded = load_router(tmp_path / "knn")
    assert loaded.knowledge_size == 62
    np.testing.assert_array_equal(loaded.score(near), after)
    with pytest.raises(ValueError, match=r"gain: expected one value per query, shape \(1,\)"):
        router.remember(Queries(["one"], vector_features(seen[:1])), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"gain: every value must be a number in \[-1, 1\], got \[1.5\]"):
        router.remember(Queries(["one"], vector_features(seen[:1])), np.array([1.5]))
    assert router.knowledge_size == 62  # a refused call adds nothing


def test_a_router_that_retrieves_nothing_remembers_nothing():
    router = build_router("random", {"seed": 0})
    assert router.remember(Queries(["a prompt"]), np.array([1.0])) is False and router.knowledge_size == 0


def test_search_pads_when_the_index_is_smaller_than_k():
    vectors = _unit(np.random.default_rng(0), 3)
    sims, idx = search(build_index(vectors), vectors, k=5, exclude_self=True)
    assert idx.shape == (3, 5) and (idx[:, 2:] == -1).all() and (idx[:, :2] >= 0).all()


def test_search_leaves_out_the_given_own_rows_of_indexed_queries():
    vectors = _unit(np.random.default_rng(1), 30)
    rows = np.array([3, 7, 20])
    sims, idx = search(build_index(vectors), vectors[rows], k=4, own_rows=rows)
    assert idx.shape == (3, 4) and not (idx == rows[:, None]).any() and (idx >= 0).all()
    _, with_self = search(build_index(vectors), vectors[rows], k=4)
    np.testing.assert_array_equal(with_self[:, 0], rows)  # without own_rows each is its own nearest
    np.testing.assert_array_equal(idx[:, :3], with_self[:, 1:])


def test_random_router_is_uniform_reproducible_and_order_free():
    prompts = [f"prompt {i}" for i in range(4000)]
    router = build_router("random", {"seed": 1})
    scores = router.score_prompts(prompts)
    assert 0.45 < scores.mean() < 0.55 and scores.min() >= 0 and scores.max() < 1
    np.testing.assert_array_equal(router.score_prompts(prompts[::-1])[::-1], scores)
    assert not np.array_equal(build_router("random", {"seed": 2}).score_prompts(prompts), scores)


def test_saved_router_scores_the_same_after_loading(tmp_path):
    train = _training_set()
    router = build_router("knn", {"k": 7}).fit(train)
    router.save(tmp_path / "knn")
    loaded = load_router(tmp_path / "knn")
    queries = Queries(["a", "b"], vector_features(_unit(np.random.default_rng(3), 2)))
    np.testing.assert_allclose(loaded.score(queries), router.score(queries))
    assert loaded.config == router.config and not list(tmp_path.rglob("*.pkl"))
    assert json.loads((tmp_path / "knn" / "router.json").read_text())["config"]["encoder"]["keep"] == "tail"


def test_registry_rejects_duplicates_and_unknown_names_and_fields():
    build_router("knn")
    with pytest.raises(ValueError, match="already registered"):
        register_router("knn")(type("Other", (Router,), {"score": lambda self, q: q}))
    with pytest.raises(ConfigError, match="routers.nope: unknown router 'nope'; known: bert, causal_llm, knn"):
        build_router("nope")
    with pytest.raises(ConfigError, match="routers.knn.kk: unknown key; did you mean k"):
        build_router("knn", {"kk": 3})
    assert {"random", "knn"} <= set(ROUTERS)


def test_routers_are_declared_by_entry_point_and_imported_when_first_built():
    import subprocess
    import sys

    code = "import sys; from ragrouter.routers import router_names, build_router; names = router_names(); " \
        "loaded = 'ragrouter.routers.mf' in sys.modules; build_router('mf'); print(names, loaded, 'ragrouter.routers.mf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"{['bert', 'causal_llm', 'knn', 'mf', 'ragrouter', 'ragrouter_llm', 'random', 'sw_ranking']} False True"
    assert set(router_names()) >= set(ROUTERS)


def test_the_encoder_block_reaches_every_router_that_encodes():
    run = RunConfig.from_dict(
        {
            "encoder": {"max_tokens": 128, "dtype": "float32", "keep": "head"},
            "routers": {"knn": {}, "mf": {}, "sw_ranking": {}, "ragrouter": {}, "ragrouter_llm": {}, "bert": {}, "own": {"router": "knn", "encoder": {"dtype": "bfloat16"}}},
        }
    )
    for name in ("knn", "mf", "sw_ranking", "ragrouter", "ragrouter_llm"):
        encoder = run.routers[name].config.encoder
        assert (encoder.max_tokens, encoder.dtype, encoder.keep) == (128, "float32", "head"), name
    own = run.routers["own"].config.encoder
    assert (own.dtype, own.max_tokens, own.keep) == ("bfloat16", 128, "head")  # an entry's own setting wins, the rest from the top
    assert run.routers["bert"].config.features() is None  # bert reads raw prompts
    with pytest.raises(ConfigError, match="encoder.dtype: must be one of auto, bfloat16, float32, qint8; got str 'float16'"):
        RunConfig.from_dict({"encoder": {"dtype": "float16"}})
    with pytest.raises(ConfigError, match="routers.ragrouter.encoder.dtype: must be one of"):
        RunConfig.from_dict({"routers": {"ragrouter": {"encoder": {"dtype": "half"}}}})


def test_threshold_routes_the_requested_share_of_training_traffic(tmp_path):
    scores = np.random.default_rng(0).random(1000)
    for fraction in (0.1, 0.5, 0.8):
        threshold = calibrate_threshold(scores, fraction)
        assert abs((scores >= threshold).mean() - fraction) <= 0.002
    assert (scores >= calibrate_threshold(scores, 0.0)).sum() == 0
    with pytest.raises(ValueError):
        calibrate_threshold(scores, 1.5)

    bundle = RouterBundle(build_router("random"), threshold=0.5, strong_fraction=0.5, metadata={"x": 1})
    bundle.save(tmp_path / "bundle")
    loaded = RouterBundle.load(tmp_path / "bundle")
    prompts = [f"p{i}" for i in range(50)]
    np.testing.assert_array_equal(loaded.route(prompts)[1], bundle.route(prompts)[1])
    assert loaded.metadata == {"x": 1}


@pytest.mark.parametrize("config_path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_run_config_builds_the_routers_it_names(config_path):
    """A typo in any setting fails here, not an hour into a run."""
    run = RunConfig.from_dict(run_parameters(str(config_path))).with_ablations()
    assert run.routers, f"{config_path.name} names no router"
    for spec in run.routers.values():
        assert build_router(spec.kind, spec.to_dict()).config == spec.config


def test_a_router_saved_with_flat_settings_loads_and_reads_prompts_as_it_was_trained(tmp_path):
    """A champion registered before the run config was one tree still serves: its flat
    settings read as today's, its encoder still reading a long prompt's head."""
    prompts = [f"Question {i}: what is {i} plus {i}? " + "Context sentence. " * (i % 7) for i in range(40)]
    gain = np.where(np.arange(40) % 3 == 0, 1.0, -1.0)
    router = build_router("knn", {"k": 5, "encoder": {"keep": "head", "max_tokens": 16}}).fit(TrainingSet(Queries(prompts), gain))
    router.save(tmp_path / "knn")
    meta_file = tmp_path / "knn" / "router.json"
    meta = json.loads(meta_file.read_text())
    meta["config"] = {"encoder": "all-MiniLM-L6-v2", "max_seq_length": 16, "batch_size": 64, "encoder_dtype": "auto", "k": 5}
    meta_file.write_text(json.dumps(meta))
    loaded = load_router(tmp_path / "knn")
    assert (loaded.config.encoder.keep, loaded.config.encoder.max_tokens, loaded.config.k) == ("head", 16, 5)
    new = ["Question 99: what is 99 plus 99? " + "Context sentence. " * 9, "Tell me a joke."]
    np.testing.assert_allclose(loaded.score(Queries(new)), router.score(Queries(new)))
    flat = {"hidden": 32, "epochs": 3, "experts": [], "encoder": "all-MiniLM-L6-v2", "encoder_dtype": "float32", "max_tokens": 128, "max_parse_chars": 500, "k": 20}
    ragrouter = build_router("ragrouter", upgrade_saved_config("ragrouter", flat)).config
    assert (ragrouter.network.hidden, ragrouter.training.epochs, ragrouter.blend.experts, ragrouter.parse.max_chars) == (32, 3, [], 500)
    assert (ragrouter.encoder.max_tokens, ragrouter.encoder.dtype, ragrouter.encoder.keep) == (128, "float32", "head")
    assert upgrade_saved_config("ragrouter", ragrouter.to_dict()) == ragrouter.to_dict()  # today's shape passes unchanged
