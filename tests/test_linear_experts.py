"""RAGRouter's linear experts: the leave-one-out ridge, TF-IDF ridge persistence, cross-fitting."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import Ridge

from ragrouter.routers.ragrouter.linear_experts import RIDGE_ALPHAS, TFIDF_SETTINGS, ExpertInputs, LeaveOneOutRidge, LinearExperts, NgramCounts, cross_fitted

PROMPTS = [
    "Integrate x squared from zero to one.",
    "What is the capital of France?",
    "Prove that the square root of two is irrational.",
    "Name a primary colour.",
    "Solve the differential equation y' = y.",
    "Who wrote Hamlet?",
    "Find the eigenvalues of a rotation matrix.",
    "What colour is the sky?",
] * 4


def _inputs(rng: np.random.Generator, prompts: list[str]) -> ExpertInputs:
    return ExpertInputs(prompts, rng.normal(size=(len(prompts), 8)), rng.normal(size=(len(prompts), 5)))


def _problem(n: int = 80, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(n, d))
    return inputs, inputs @ rng.normal(size=d) + rng.normal(scale=2.0, size=n)


def test_the_ridge_picks_the_alpha_with_the_smallest_leave_one_out_error_and_solves_it_exactly():
    inputs, gain = _problem()
    fitted = LeaveOneOutRidge.fit(inputs, gain)

    def loo_error(alpha: float) -> float:
        errors = []
        for i in range(len(gain)):
            rest = np.arange(len(gain)) != i
            model = Ridge(alpha=alpha).fit(inputs[rest], gain[rest])
            errors.append((model.predict(inputs[i : i + 1])[0] - gain[i]) ** 2)
        return float(np.mean(errors))

    assert fitted.alpha == RIDGE_ALPHAS[int(np.argmin([loo_error(a) for a in RIDGE_ALPHAS]))]
    reference = Ridge(alpha=fitted.alpha).fit(inputs, gain)
    np.testing.assert_allclose(fitted.weights, reference.coef_, atol=1e-8)
    np.testing.assert_allclose(fitted.predict(inputs), reference.predict(inputs), atol=1e-8)


def test_experts_rebuilt_from_their_saved_arrays_and_vocabulary_predict_the_same(tmp_path):
    rng = np.random.default_rng(1)
    inputs = _inputs(rng, PROMPTS)
    gain = np.array([1.0 if ("Prove" in p or "eigen" in p or "Integrate" in p) else 0.0 for p in PROMPTS])
    experts = LinearExperts.fit(["embedding_ridge", "tfidf_ridge", "options_ridge"], inputs, gain, tfidf_alpha=1.0)
    unseen = _inputs(rng, ["Prove that there are infinitely many primes.", "What is the capital of Spain?"])
    save_file(experts.state_arrays(), str(tmp_path / "experts.safetensors"))
    rebuilt = LinearExperts.from_state(experts.names, load_file(str(tmp_path / "experts.safetensors")), experts.vocabulary())
    np.testing.assert_array_equal(rebuilt.predict(unseen), experts.predict(unseen))
    by_words = experts.predict(unseen)[:, 1]
    assert by_words[0] > by_words[1]  # the proof question shares the hard questions' words
    with pytest.raises(ValueError, match="unknown experts"):
        LinearExperts.fit(["tfidf"], inputs, gain, 1.0)


@pytest.mark.parametrize("max_features", [TFIDF_SETTINGS["max_features"], 7])
def test_tfidf_from_counts_tokenised_once_is_tfidfvectorizer_fitted_on_the_same_rows(max_features):
    rng = np.random.default_rng(3)
    prompts = [" ".join(rng.choice(["alpha", "beta", "gamma", "delta", "prove", "solve", "x", "y"], size=rng.integers(2, 9))) for _ in range(60)]
    rows = np.sort(rng.choice(len(prompts), size=40, replace=False))
    counts = NgramCounts.of(prompts)
    columns, idf, matrix = counts.rows(rows).tfidf(max_features)
    vocabulary = {str(term): i for i, term in enumerate(counts.terms[columns])}
    reference = TfidfVectorizer(**(TFIDF_SETTINGS | {"max_features": max_features}))
    expected = reference.fit_transform([prompts[i] for i in rows])
    assert vocabulary == reference.vocabulary_
    assert (len(vocabulary) == 7) == (max_features == 7)  # the limit is reached, and only when set that low
    np.testing.assert_array_equal(idf, reference.idf_)
    # the same numbers up to summation order (sklearn keeps a row's terms in order of appearance)
    np.testing.assert_allclose(matrix.toarray(), expected.toarray(), rtol=1e-12, atol=1e-15)
    held_out = np.setdiff1d(np.arange(len(prompts)), rows)  # as cross-fitting weights its held-out fold
    transformed = reference.transform([prompts[i] for i in held_out])
    np.testing.assert_allclose(counts.rows(held_out).weighted(columns, idf).toarray(), transformed.toarray(), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="too few for the TF-IDF expert"):
        NgramCounts.of(["one prompt", "another text"]).tfidf()


def test_the_hand_written_weighting_is_tfidftransformers_on_the_same_counts():
    """The weighting alone, apart from the vocabulary choice: sklearn's TfidfTransformer with
    the settings TFIDF_SETTINGS names (sublinear tf, smoothed idf, L2 rows), fitted on the
    training rows' counts of the kept terms, gives the same idf and rows, and its `transform`
    the held-out rows that `weighted` gives (cross-fitting's held-out fold)."""
    prompts = [
        f"{stem} {subject}?\nA. {a}\nB. {b}\nC. {a} and {b}\nD. None of the above\nAnswer:"
        for stem in ("Which of the following best describes", "What is the role of", "Find the")
        for subject in ("the derivative of x squared", "the capital of France", "a prime number", "the prime factors of 12")
        for a, b in (("2x", "x"), ("Paris", "Lyon"), ("two", "three"))
    ]
    rows, held_out = np.arange(0, len(prompts), 2), np.arange(1, len(prompts), 2)
    counts = NgramCounts.of(prompts)
    columns, idf, matrix = counts.rows(rows).tfidf()
    reference = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True)
    expected = reference.fit_transform(counts.rows(rows).counts[:, columns])
    assert counts.counts[:, columns].max() > 1  # repeated terms: the sublinear tf is exercised
    np.testing.assert_allclose(idf, reference.idf_, rtol=1e-12)
    np.testing.assert_allclose(matrix.toarray(), expected.toarray(), rtol=1e-12, atol=1e-15)
    transformed = reference.transform(counts.rows(held_out).counts[:, columns])
    np.testing.assert_allclose(counts.rows(held_out).weighted(columns, idf).toarray(), transformed.toarray(), rtol=1e-12, atol=1e-15)


def test_a_cross_fitted_prediction_never_depends_on_the_queries_own_label():
    rng = np.random.default_rng(2)
    inputs = _inputs(rng, PROMPTS)
    gain = rng.choice([-1.0, 0.0, 1.0], size=len(PROMPTS))
    names = ["embedding_ridge", "tfidf_ridge", "options_ridge"]
    before = cross_fitted(names, inputs, gain, 1.0, folds=4, seed=0)
    flipped = gain.copy()
    flipped[5] = -flipped[5] if flipped[5] else 1.0
    after = cross_fitted(names, inputs, flipped, 1.0, folds=4, seed=0)
    np.testing.assert_array_equal(after[5], before[5])
    rest, held_out = np.arange(20, len(PROMPTS)), np.arange(20)
    experts = LinearExperts.fit(names, inputs.rows(rest), gain[rest], 1.0)  # the counts' rows
    assert experts.tfidf.counted_terms is inputs.ngrams.terms
    uncounted = ExpertInputs(inputs.prompts, inputs.pooled, inputs.answer_options).rows(held_out)
    np.testing.assert_allclose(experts.predict(inputs.rows(held_out)), experts.predict(uncounted), rtol=1e-12, atol=1e-14)
    assert not np.allclose(np.delete(after, 5, axis=0), np.delete(before, 5, axis=0))  # others see it


def test_the_standardised_ridge_is_sklearns_on_unit_variance_columns_and_a_constant_input_predicts_the_mean():
    inputs, gain = _problem()
    inputs = inputs * np.array([1e-3, 1.0, 10.0, 1e3, 1.0, 0.1])  # unlike scales, as option features have
    fitted = LeaveOneOutRidge.fit(inputs, gain, standardize=True)
    scaled = (inputs - inputs.mean(0)) / inputs.std(0)
    reference = Ridge(alpha=fitted.alpha).fit(scaled, gain)
    np.testing.assert_allclose(fitted.predict(inputs), reference.predict(scaled), atol=1e-8)
    assert not np.allclose(LeaveOneOutRidge.fit(inputs, gain).predict(inputs), fitted.predict(inputs))  # raw: scale decides
    constant = LeaveOneOutRidge.fit(np.zeros((len(gain), 4)), gain, standardize=True)  # prompts with no answer options
    np.testing.assert_allclose(constant.predict(inputs[:, :4]), gain.mean())


def test_a_tfidf_expert_routing_raw_prompts_predicts_what_tfidfvectorizer_transform_gives():
    rng = np.random.default_rng(4)
    gain = rng.choice([-1.0, 0.0, 1.0], size=len(PROMPTS))
    expert = LinearExperts.fit(["tfidf_ridge"], _inputs(rng, PROMPTS), gain, 1.0).tfidf
    reference = TfidfVectorizer(**TFIDF_SETTINGS, vocabulary=expert.vocabulary)
    reference.idf_ = expert.idf
    prompts = ["Prove that the square root of three is irrational, prove it twice.", "What is the capital of Spain?", "zzz qqq", ""]
    expected = reference.transform(prompts) @ expert.weights + expert.intercept
    np.testing.assert_allclose(expert.predict(prompts), expected, rtol=1e-12, atol=1e-15)
    assert expert.predict(["zzz qqq"])[0] == expert.intercept  # no known term: the intercept alone
    assert len(set(np.round(expected, 12))) == 3  # the prompts that share words differ
