"""RAGRouter: parse graphs, token alignment, fusion masking, leave-one-out retrieval, and the
trained router on a real MMLU slice (real spaCy, real encoder, real FAISS, real MLflow registry)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.utils import to_dense_batch

from ragrouter.bundle import RouterBundle
from ragrouter.data.ingest import ingest_sources
from ragrouter.data.sources import SourceConfig
from ragrouter.evaluation.metrics import summarize
from ragrouter.config import _merged
from ragrouter.encoder import Encoder, EncoderConfig, length_batches, load_encoder, resolve_encoder_path, traced_token_states
from ragrouter.features.neighbours import MEAN_GAIN_COLUMN, feature_count, neighbour_features
from ragrouter.features.query_features import RAGGED, FeatureConfig, QueryFeatures, ServingThreads, extract_features
from ragrouter.features.syntax import ParseConfig, align_to_tokens, dep_vocabulary, parse_graphs, pos_vocabulary
from ragrouter.labels import gains
from ragrouter.precision import native_bfloat16
from ragrouter.registry.model_registry import load_bundle, register_bundle
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.retrieval import build_index, search
from ragrouter.routers import Queries, TrainingSet, build_router, load_router
from ragrouter.routers.ragrouter.config import NetworkConfig
from ragrouter.routers.ragrouter.fusion import CrossModalFusion
from ragrouter.routers.ragrouter.network import InputSizes, NetBatch, RAGRouterNet, scoring_forward
from ragrouter.routers.ragrouter.trainer import average_weights

FAST = {"training": {"epochs": 6, "patience": 3}, "network": {"hidden": 32}, "encoder": {"max_tokens": 128}}
ENCODER_128 = EncoderConfig(max_tokens=128)


def fast(**changes) -> dict:
    """FAST with nested changes (`training={"epochs": 1}`)."""
    return _merged(FAST, changes)


def _arcs(graph) -> set[tuple[int, int]]:
    return set(map(tuple, graph.edges.T.tolist()))


def test_a_sentence_graph_has_its_arcs_both_ways_and_depths_from_the_root():
    (graph,) = parse_graphs(["The cat sat on the mat."], ParseConfig())
    assert len(graph) == 7  # The cat sat on the mat .
    assert graph.edges.shape == (2, 12)  # 6 arcs (n - 1), each in both directions
    arcs = _arcs(graph)
    assert all((b, a) in arcs for a, b in arcs)
    pos = [pos_vocabulary()[i] for i in graph.pos]
    dep = [dep_vocabulary()[i] for i in graph.dep]
    assert pos[:3] == ["DET", "NOUN", "VERB"] and dep[2] == "ROOT"
    assert graph.depth[2] == 0 and graph.depth[1] == 1 and graph.depth[0] == 2  # sat <- cat <- The
    assert (2, 1) in arcs and (1, 0) in arcs  # head -> child: sat -> cat -> The
    assert graph.spans[1].tolist() == [4, 7]


def test_two_sentences_have_two_roots_and_no_arc_between_them_and_whitespace_is_no_node():
    (graph,) = parse_graphs(["It rained.\n\nWe stayed home."], ParseConfig())
    assert len(graph) == 7  # It rained . We stayed home .
    assert (graph.depth == 0).sum() == 2
    assert graph.edges.shape[1] == 2 * (len(graph) - 2)


def test_node_labels_are_spacys_own_for_every_token():
    """Labels come from Doc.to_array ids (symbol ids or string hashes): each must map back to
    the label spaCy gives the token, none to <unk>."""
    from ragrouter.features.syntax import load_parser

    text = "In 1905, Einstein published 4 papers; two of them changed physics, didn't they?"
    (graph,) = parse_graphs([text], ParseConfig())
    tokens = [t for t in load_parser()(text) if not t.is_space]
    assert [pos_vocabulary()[i] for i in graph.pos] == [t.pos_ for t in tokens]
    assert [dep_vocabulary()[i] for i in graph.dep] == [t.dep_ for t in tokens]


def test_long_prompts_are_capped_in_characters_and_nodes():
    (graph,) = parse_graphs(["word " * 1000], ParseConfig(max_chars=100, max_nodes=15))
    assert len(graph) == 15 and graph.spans.max() <= 100
    assert graph.edges.max() < 15


def test_feature_config_round_trips_through_a_plain_dict():
    config = build_router("ragrouter", {"parse": {"max_chars": 300}, "encoder": {"max_tokens": 64}}).config.features()
    assert FeatureConfig.from_dict(config.to_dict()) == config
    assert "@300/" in config.identity and "@64/tail/" in config.identity and config.token_states


def test_nodes_align_with_the_first_overlapping_encoder_token():
    spans = np.array([[0, 3], [4, 12], [13, 14], [50, 52]])
    offsets = np.array([[0, 0], [0, 3], [4, 8], [8, 12], [13, 14], [0, 0]])  # [CLS] ... [SEP]
    assert align_to_tokens(spans, offsets).tolist() == [1, 2, 4, -1]


def test_fusion_output_ignores_padding_and_survives_a_query_without_nodes():
    torch.manual_seed(0)
    fusion = CrossModalFusion(hidden=8, heads=2).eval()
    tokens, nodes = torch.randn(2, 5, 8), torch.randn(2, 4, 8)
    token_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    node_mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    out = fusion(tokens, token_mask, nodes, node_mask)
    assert out.shape == (2, 16) and torch.isfinite(out).all()
    noisy_tokens, noisy_nodes = tokens.clone(), nodes.clone()
    noisy_tokens[0, 3:] += 100.0
    noisy_nodes[0, 2:] += 100.0
    noisy_nodes[1] += 100.0
    torch.testing.assert_close(fusion(noisy_tokens, token_mask, noisy_nodes, node_mask), out)


def test_leave_one_out_retrieval_never_returns_the_query_itself():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    gain = np.where(np.arange(60) % 2 == 0, 1.0, -1.0)
    index = build_index(vectors)
    sims, positions = search(index, vectors, 20, exclude_self=True)
    assert not (positions == np.arange(60)[:, None]).any()
    loo = neighbour_features(sims, positions, gain, 0.0)
    with_self = neighbour_features(*search(index, vectors, 20), gain, 0.0)
    assert loo.shape == (60, feature_count())
    np.testing.assert_allclose(with_self[:, 6], 1.0, atol=1e-5)  # best similarity: itself
    assert (loo[:, 6] < 0.999).all()


@pytest.fixture(scope="module")
def mmlu_slice(routellm_data: Path) -> tuple[list[str], np.ndarray, pd.DataFrame, QueryFeatures]:
    source = SourceConfig.from_dict(
        {"name": "mmlu", "kind": "routellm_mmlu", "path": str(routellm_data / "mmlu"), "conflicting_duplicates": "drop", "sample_fraction": 0.08}
    )
    records, _ = ingest_sources([source])
    prompts = records.prompts
    return prompts, gains(records), records.frame, extract_features(prompts, build_router("ragrouter", FAST).config.features())


def test_auto_precision_computes_in_what_this_cpu_runs_natively(mmlu_slice):
    """`auto` (the default) is bfloat16 on CPUs with bfloat16 units and float32 elsewhere, where
    bfloat16 is emulated and 5x slower: its vectors are that precision's, and named after it."""
    prompts = mmlu_slice[0][:16]
    native, other = ("bfloat16", "float32") if native_bfloat16() else ("float32", "bfloat16")
    auto, explicit = FeatureConfig(ENCODER_128, token_states=True), FeatureConfig(EncoderConfig(max_tokens=128, dtype=native), token_states=True)
    assert auto.encoder.dtype == EncoderConfig.dtype == "auto" and auto.encoder.computed_dtype == native
    assert auto.identity == explicit.identity
    assert auto.identity != FeatureConfig(EncoderConfig(max_tokens=128, dtype=other), token_states=True).identity
    from_auto, from_native = extract_features(prompts, auto), extract_features(prompts, explicit)
    for name, array in from_auto.arrays.items():
        np.testing.assert_array_equal(array, from_native.arrays[name])
    in_other = Encoder(EncoderConfig(max_tokens=128, dtype=other)).embed(prompts[:4])
    assert not np.array_equal(in_other, from_auto.pooled[:4])  # the two precisions really differ


def test_pooled_vectors_are_sentence_transformers_embeddings_and_features_slice_by_row(mmlu_slice):
    """The one encoder's pooled vectors are what sentence-transformers gives the packaged MiniLM
    (mean of the token states, normalised) for prompts it reads whole."""
    from sentence_transformers import SentenceTransformer

    prompts, _, frame, features = mmlu_slice
    float32 = EncoderConfig(max_tokens=128, dtype="float32")
    short = [p for p in prompts if len(Encoder(float32).tokenize([p]).ids[0]) < 128][:40]
    reference = SentenceTransformer(resolve_encoder_path(float32.name), device="cpu").encode(short, normalize_embeddings=True)
    np.testing.assert_allclose(Encoder(float32).embed(short), reference, atol=1e-5)
    rows = [3, 1, 3, len(prompts) - 1, 0]
    part = features.subset(rows)
    assert len(part) == len(rows) and {k: v.dtype for k, v in part.arrays.items()} == {k: v.dtype for k, v in features.arrays.items()}
    for position, row in enumerate(rows):
        sliced, original = _query(part, position), _query(features, row)
        assert sliced.keys() == original.keys()
        for name in original:
            assert np.array_equal(sliced[name], original[name]), (row, name)
    empty = features.subset([])
    assert len(empty) == 0 and empty.arrays["token_states"].shape == (0, features.pooled.shape[1]) and empty.arrays["edges"].shape == (2, 0)
    pooled_only = extract_features(prompts[:5], FeatureConfig(ENCODER_128))
    assert set(pooled_only.arrays) == {"pooled"} and pooled_only.subset([4, 0]).pooled.shape == (2, features.pooled.shape[1])


def test_a_long_prompt_is_read_from_its_end_and_parsed_where_the_encoder_reads(mmlu_slice):
    """Few-shot prompts share a long head: read by its tail, each keeps its own question."""
    questions = mmlu_slice[0][:2]
    head = "The following are worked examples.\n\n" + "Q: What is two plus two? A: four.\n" * 60
    config = FeatureConfig(ENCODER_128, token_states=True, parse=ParseConfig())
    tail = extract_features([head + q for q in questions], config)
    assert not np.allclose(tail.pooled[0], tail.pooled[1])  # different questions, different vectors
    np.testing.assert_allclose(tail.pooled, Encoder(ENCODER_128).embed([head + q for q in questions]), atol=1e-5)
    read_head = Encoder(EncoderConfig(max_tokens=128, keep="head")).embed([head + q for q in questions])
    np.testing.assert_allclose(read_head[0], read_head[1], atol=1e-6)  # the head alone: one vector for both
    tokenized = Encoder(ENCODER_128).tokenize([head + questions[0]])
    start = tokenized.read_start(0)
    assert len(tokenized.ids[0]) == 128 and start > len(head) - 800
    nodes = _query(tail, 0)
    graph_tokens = nodes["node_token"]
    assert (graph_tokens >= 0).mean() > 0.9  # the parse covers the tokens the encoder read


def _query(features: QueryFeatures, row: int) -> dict[str, np.ndarray]:
    """One query's arrays, cut from the flat ones by their offsets: what subsets and batches must keep."""
    out = {"pooled": features.pooled[row], "answer_options": features.arrays["answer_options"][row]}
    for name, offsets in RAGGED.items():
        start, end = features.arrays[offsets][row], features.arrays[offsets][row + 1]
        out[name] = features.arrays[name][..., start:end] if name == "edges" else features.arrays[name][start:end]
    return out


def _collated_query_by_query(features: QueryFeatures, rows: list[int]):
    """The batch as PyG builds it from one `Data` per query: what `NetBatch.collate` must equal."""
    from torch_geometric.data import Batch, Data

    queries = [_query(features, row) for row in rows]
    width = max(len(q["token_states"]) for q in queries)
    tokens = torch.zeros(len(queries), width, features.pooled.shape[1])
    for b, q in enumerate(queries):
        tokens[b, : len(q["token_states"])] = torch.from_numpy(q["token_states"].astype(np.float32))
    graphs = [
        Data(
            pos=torch.from_numpy(q["node_pos"]),
            dep=torch.from_numpy(q["node_dep"]),
            depth=torch.from_numpy(q["node_depth"]),
            token_position=torch.where(torch.from_numpy(q["node_token"]) >= 0, torch.from_numpy(q["node_token"]) + b * width, -1),
            edge_index=torch.from_numpy(q["edges"]),
            num_nodes=len(q["node_token"]),
        )
        for b, q in enumerate(queries)
    ]
    return tokens, Batch.from_data_list(graphs)


def test_a_collated_batch_is_the_one_pyg_builds_query_by_query(mmlu_slice):
    *_, features = mmlu_slice
    rows = [5, 0, len(features) - 1, 5, 17]
    retrieval = np.random.default_rng(0).normal(size=(len(features), feature_count())).astype(np.float32)
    batch = NetBatch.collate(features, np.array(rows), retrieval)
    tokens, graphs = _collated_query_by_query(features, rows)
    torch.testing.assert_close(batch.tokens, tokens, rtol=0, atol=0)
    assert torch.equal(batch.token_mask, torch.from_numpy(np.arange(tokens.shape[1]) < np.diff(features.arrays["token_offsets"])[rows][:, None]))
    assert isinstance(batch.graphs, type(graphs)) and batch.graphs.num_graphs == len(rows)
    for name in ("pos", "dep", "depth", "token_position", "edge_index", "batch", "ptr"):
        expected = getattr(graphs, name)
        assert getattr(batch.graphs, name).dtype == expected.dtype and torch.equal(getattr(batch.graphs, name), expected), name
    assert torch.equal(batch.pooled, torch.from_numpy(features.pooled[rows])) and torch.equal(batch.retrieval, torch.from_numpy(retrieval[rows]))
    _, node_mask = to_dense_batch(graphs.pos, graphs.batch, batch_size=len(rows))  # where the nodes sit once padded
    assert torch.equal(batch.node_mask, node_mask)


@pytest.mark.parametrize("architecture", [{}, {"fusion": "concat"}, {"syntax": False}, {"retrieval": False}])
def test_the_traced_scoring_network_gives_the_eager_networks_logits(mmlu_slice, architecture):
    *_, features = mmlu_slice
    # one-token prompts: a graph of one node and no arc; a long prompt: the node cap
    short = extract_features(["Hi", "Why?", "Name it. " * 200], build_router("ragrouter", fast(parse={"max_nodes": 50})).config.features())
    sizes = InputSizes(features.pooled.shape[1], len(pos_vocabulary()), len(dep_vocabulary()), feature_count())
    torch.manual_seed(0)
    net = RAGRouterNet(sizes, NetworkConfig(hidden=32, **architecture)).eval()
    traced = scoring_forward(net)
    rng = np.random.default_rng(0)
    for source, rows in ((features, [0]), (features, list(range(40))), (features, [7, 3, 90]), (short, [0]), (short, [0, 1, 2])):
        retrieval = rng.normal(size=(len(source), feature_count())).astype(np.float32)
        batch = NetBatch.collate(source, np.array(rows), retrieval)
        with torch.inference_mode():
            expected, logits = net(batch), traced(batch)
        assert logits.shape == (len(rows),)
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
        assert len(rows) == 1 or expected.std() > 1e-3  # the queries' logits differ: a real comparison
    assert np.diff(short.arrays["edge_offsets"])[0] == 0 and np.diff(short.arrays["node_offsets"])[2] == 50


def test_the_int8_encoder_quantizes_its_linear_layers_and_stays_near_float32(mmlu_slice):
    prompts = mmlu_slice[0][:40]
    _, model = load_encoder(EncoderConfig.name, "qint8")
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert len(quantized) == 6 * 6 + 1 and not linear  # q, k, v, attention output, two FFN per layer; pooler
    float32 = Encoder(EncoderConfig(max_tokens=128, dtype="float32")).embed(prompts)
    int8 = extract_features(prompts, FeatureConfig(EncoderConfig(max_tokens=128, dtype="qint8"))).pooled
    cosine = np.einsum("ij,ij->i", float32, int8)
    assert cosine.min() > 0.93 and cosine.mean() > 0.97 and cosine.max() < 0.9999  # near, and really quantized
    # one prompt per call in int8: a prompt's vector does not depend on the others around it
    alone = np.concatenate([Encoder(EncoderConfig(max_tokens=128, dtype="qint8")).embed([p]) for p in prompts[:6]])
    np.testing.assert_array_equal(alone, int8[:6])


def test_forward_passes_hold_prompts_of_similar_lengths_and_encode_as_one_pass_would(mmlu_slice):
    lengths = [200, 12, 190, 101, 99, 50, 49, 8, 7, 6]
    batches = length_batches(lengths, size=3, max_padding=2.0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for rows in batches:
        assert len(rows) <= 3 and max(lengths[r] for r in rows) <= 2.0 * min(lengths[r] for r in rows)
    assert [sorted(lengths[r] for r in rows) for rows in batches] == [[101, 190, 200], [50, 99], [49], [7, 8, 12], [6]]
    prompts = mmlu_slice[0][:12]  # of mixed lengths: several passes
    split = Encoder(EncoderConfig(max_tokens=128, batch_size=32)).embed(prompts)
    whole = Encoder(EncoderConfig(max_tokens=128, batch_size=32, max_padding=1000.0)).embed(prompts)
    np.testing.assert_allclose(split, whole, atol=1e-5)


def test_the_encoder_calls_back_before_each_batch_so_a_server_can_take_its_cores_back(mmlu_slice):
    prompts = mmlu_slice[0][:10]
    calls = []
    encoder = Encoder(EncoderConfig(max_tokens=128, batch_size=4))
    tokenized = encoder.tokenize(prompts)
    encoder.encode(tokenized, on_batch=lambda: calls.append(torch.get_num_threads()))
    assert len(calls) == len(length_batches([len(ids) for ids in tokenized.ids], 4, 2.0)) >= 3
    ServingThreads(parsing=1, parsed=2).set("parsing")
    assert torch.get_num_threads() == 1
    ServingThreads(parsing=1, parsed=2).set("parsed")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "qint8"])
def test_the_traced_encoder_gives_the_eager_models_token_states(mmlu_slice, dtype):
    prompts = mmlu_slice[0][:24]
    tokenizer, model = load_encoder(EncoderConfig.name, dtype)
    traced = traced_token_states(model, tokenizer)
    for batch in (prompts[:1], prompts[1:9], prompts[9:24]):  # one prompt; padded batches of other widths
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
        inputs = {key: encoded[key] for key in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            expected, states = model(**encoded).last_hidden_state, traced(inputs)
        assert states.shape == expected.shape
        real = encoded["attention_mask"].bool()
        torch.testing.assert_close(states[real], expected[real], rtol=0, atol=1e-5)


def test_trained_ragrouter_beats_random_out_of_fold_and_round_trips_through_the_registry(mmlu_slice, tmp_path):
    prompts, gain, frame, features = mmlu_slice
    order = np.random.default_rng(0).permutation(len(prompts))
    fold_tests = [np.sort(order[k::4]) for k in range(4)]  # four folds: every query scored once, unseen

    def queries(rows: np.ndarray) -> Queries:
        return Queries([prompts[i] for i in rows], features=features.subset(rows))

    scores = np.empty(len(prompts))
    for test in fold_tests:
        train = np.setdiff1d(np.arange(len(prompts)), test)
        router = build_router("ragrouter", FAST).fit(TrainingSet(queries(train), gain[train], 0.0))
        assert 1 <= len(router.history_) <= FAST["training"]["epochs"] and "val_apgr" in router.history_[0]
        scores[test] = router.score(queries(test))
    strong, weak = frame["strong_quality"].to_numpy(), frame["weak_quality"].to_numpy()
    result = summarize(scores, strong, weak)
    random = summarize(build_router("random", {"seed": 0}).score(queries(np.arange(len(prompts)))), strong, weak)
    assert result["APGR"] > random["APGR"] + 0.03, (result, random)

    test = fold_tests[-1]  # the last fold's router, on its own test queries
    scores = scores[test]
    configure_tracking()
    held_out = [prompts[i] for i in test[:12]]
    in_memory = router.score_prompts(held_out)  # raw prompts: parsed, encoded, retrieved, scored
    # the same up to bfloat16's rounding, which depends on how the encoder's batches are padded
    np.testing.assert_allclose(in_memory, scores[:12], atol=0.02)
    threads = torch.get_num_threads()
    with mlflow.start_run(experiment_id=use_experiment("tests")):
        version = register_bundle(RouterBundle(router, 0.5, 0.5, {"models": {"strong": "big", "weak": "small"}}), "ragrouter-roundtrip", {})
    model = mlflow.pyfunc.load_model(f"models:/ragrouter-roundtrip/{version}")
    assert torch.get_num_threads() <= max(1, len(os.sched_getaffinity(0)) - 1)  # a core left to the parser
    # registering loaded it once already (MLflow validates the input example): the served one
    # still takes every core back once a batch is parsed
    assert model.unwrap_python_model().bundle.router.serving_threads_.parsed == threads
    served = model.predict(pd.DataFrame({"prompt": held_out}))
    np.testing.assert_allclose(served["p_strong"], in_memory, atol=1e-5)
    reloaded = load_bundle("ragrouter-roundtrip", version).router
    assert reloaded.history_ == router.history_ and reloaded.averaged_epochs_ == router.averaged_epochs_
    assert reloaded.blend_.experts.names == ("embedding_ridge", "tfidf_ridge", "options_ridge") and reloaded.blend_.scale.shape == (5,)


def test_training_keeps_the_average_of_the_best_validation_epochs(mmlu_slice):
    prompts, gain, _, features = mmlu_slice
    train = TrainingSet(Queries(prompts, features=features), gain, 0.0)
    router = build_router("ragrouter", fast(training={"epochs": 5, "patience": 5, "average_checkpoints": 2})).fit(train)
    by_apgr = sorted(router.history_, key=lambda record: -record["val_apgr"])
    assert len(router.history_) == 5
    assert router.averaged_epochs_ == sorted(int(record["epoch"]) for record in by_apgr[:2])
    by_loss = build_router("ragrouter", fast(training={"epochs": 5, "patience": 5, "average_checkpoints": 1, "early_stopping": "val_loss"})).fit(train)
    assert by_loss.averaged_epochs_ == [int(min(by_loss.history_, key=lambda record: record["val_loss"])["epoch"])]
    # the averaged net is the mean of the kept checkpoints, not either one of them
    first, second = ({"w": torch.tensor([1.0, 3.0])}, {"w": torch.tensor([3.0, 5.0])})
    assert torch.equal(average_weights([first, second])["w"], torch.tensor([2.0, 4.0]))
    with pytest.raises(ValueError, match="routers.ragrouter.training.early_stopping: must be one of val_apgr, val_loss"):
        build_router("ragrouter", {"training": {"early_stopping": "train_loss"}})
    with pytest.raises(ValueError, match="routers.ragrouter.blend: unknown experts"):
        build_router("ragrouter", {"blend": {"experts": ["gbm"]}})
    with pytest.raises(ValueError, match="nothing else is blended"):
        build_router("ragrouter", {"blend": {"experts": [], "network_weight": 0.0}, "network": {"retrieval": False}})
    with pytest.raises(ValueError, match="must not be negative"):
        build_router("ragrouter", {"blend": {"neighbour_weight": -1.0}})


def test_the_neighbour_component_is_the_leave_one_out_mean_gain_of_the_k_neighbours(mmlu_slice):
    prompts, gain, _, features = mmlu_slice
    train = TrainingSet(Queries(prompts, features=features), gain, 0.0)
    router = build_router("ragrouter", fast(training={"epochs": 1}, blend={"experts": [], "network_weight": 0.0})).fit(train)
    sims, positions = search(router.index_, features.pooled, router.config.k, exclude_self=True)
    mean_gain = neighbour_features(sims, positions, gain, 0.0)[:, MEAN_GAIN_COLUMN]
    scores = router.score_training(train)  # the neighbours alone: a monotone function of their mean gain
    order = np.argsort(mean_gain, kind="stable")
    assert np.all(np.diff(scores[order]) >= -1e-12) and scores.std() > 0.01


def test_the_options_component_blends_in_only_where_training_prompts_have_answer_options(mmlu_slice):
    prompts, gain, _, features = mmlu_slice
    rows = np.arange(300)
    part = features.subset(rows)
    train = TrainingSet(Queries([prompts[i] for i in rows], features=part), gain[rows], 0.0)
    # the options alone (cross-fitted ridge on their features) rank the training queries
    only = build_router("ragrouter", fast(training={"epochs": 1}, blend={"experts": ["options_ridge"], "network_weight": 0.0, "neighbour_weight": 0.0})).fit(train)
    scores, ridge = only.score_training(train), only.blend_.expert_training[:, 0]
    order = np.argsort(ridge, kind="stable")
    assert np.isfinite(only.blend_.scale).all() and np.all(np.diff(scores[order]) >= -1e-12) and scores.std() > 0.01
    # prompts without options (GSM8K's): the constant component is left out, scores as without it
    no_options = dataclasses.replace(part, arrays={**part.arrays, "answer_options": np.zeros_like(part.arrays["answer_options"])})
    plain = TrainingSet(Queries(train.queries.prompts, features=no_options), train.gain, 0.0)
    with_expert = build_router("ragrouter", fast(training={"epochs": 1})).fit(plain)
    without = build_router("ragrouter", fast(training={"epochs": 1}, blend={"experts": ["embedding_ridge", "tfidf_ridge"]})).fit(plain)
    assert np.isinf(with_expert.blend_.scale[-1]) and np.isfinite(with_expert.blend_.scale[:-1]).all()
    np.testing.assert_allclose(with_expert.score(plain.queries), without.score(plain.queries), atol=1e-12)
    with pytest.raises(ValueError, match="nothing ranks them"):
        build_router("ragrouter", fast(training={"epochs": 1}, blend={"experts": ["options_ridge"], "network_weight": 0.0, "neighbour_weight": 0.0})).fit(plain)


def test_remembered_outcomes_move_ragrouters_scores_and_are_saved_with_it(mmlu_slice, tmp_path):
    """Outcomes remembered after training join the neighbours its features and blend read:
    the same queries asked again score higher where the strong model helped, lower where the
    weak one was better; a save and load keeps them."""
    prompts, gain, _, features = mmlu_slice
    trained, later = np.arange(300), np.arange(300, 340)

    def queries(rows: np.ndarray) -> Queries:
        return Queries([prompts[i] for i in rows], features=features.subset(rows))

    router = build_router("ragrouter", fast(training={"epochs": 1})).fit(TrainingSet(queries(trained), gain[trained], 0.0))
    before = router.score(queries(later))
    outcome = np.where(np.arange(len(later)) % 2 == 0, 1.0, -1.0)  # strong helped, weak was better, alternating
    assert router.remember(queries(later), outcome) and router.knowledge_size == 340
    after = router.score(queries(later))
    up, down = (after - before)[outcome > 0].mean(), (after - before)[outcome < 0].mean()
    assert up > 0.01 and down < -0.01, (up, down)
    router.save(tmp_path / "ragrouter")
    loaded = load_router(tmp_path / "ragrouter")
    assert loaded.knowledge_size == 340
    np.testing.assert_allclose(loaded.score(queries(later)), after, atol=1e-6)
