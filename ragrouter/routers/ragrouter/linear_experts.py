"""Linear experts beside RAGRouter's network: ridge regressions of the gain on the prompt's
pooled embedding (plus its log length), on its TF-IDF word n-grams and on its answer options'
features (how alike the options are, how close to the question: `features.answer_options`).

Why: with a few thousand labelled queries a linear model of the gain is hard to beat (on the
RouteLLM data an embedding ridge reaches P3 APGR 0.65 where the network alone gives 0.61) and
its errors differ from the network's, so a blend of both ranks queries better than either.
Every training query also gets a cross-fitted prediction (from experts fitted on the other
folds), so the blend's scales and the router's calibration are measured on honest scores.
State is plain arrays and a JSON vocabulary: no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.preprocessing import normalize

EXPERTS = ("embedding_ridge", "tfidf_ridge", "options_ridge")
RIDGE_ALPHAS = tuple(np.logspace(-1, 3, 13))  # chosen per fit by exact leave-one-out error
TFIDF_SETTINGS: dict[str, Any] = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True, "max_features": 50_000, "dtype": np.float64}


@dataclass(frozen=True)
class NgramCounts:
    """Word n-gram counts of prompts, tokenised once: the TF-IDF fits of cross-fitting slice the
    rows they train on instead of reading every prompt again, with TfidfVectorizer's numbers
    (on 11k MMLU prompts the six TfidfVectorizer fits took 12.8 s of a 74 s RAGRouter fit)."""

    terms: np.ndarray  # every n-gram seen, sorted as TfidfVectorizer orders its vocabulary
    counts: sparse.csr_matrix  # (prompts, terms)

    @classmethod
    def of(cls, prompts: Sequence[str]) -> NgramCounts:
        counter = CountVectorizer(ngram_range=TFIDF_SETTINGS["ngram_range"], dtype=TFIDF_SETTINGS["dtype"])
        counts = counter.fit_transform(prompts)
        return cls(counter.get_feature_names_out(), counts.tocsr())

    def rows(self, rows: np.ndarray) -> NgramCounts:
        return NgramCounts(self.terms, self.counts[rows])

    def tfidf(self, max_features: int = TFIDF_SETTINGS["max_features"]) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
        """What `TfidfVectorizer(**TFIDF_SETTINGS).fit_transform` of these rows' prompts gives:
        the kept term columns (the vocabulary, in order), their idf and the matrix (terms in at
        least min_df prompts; the max_features most frequent, ties broken in the same order;
        sublinear tf, smoothed idf, L2 rows)."""
        document_frequency = self.counts.getnnz(axis=0)
        kept = document_frequency >= TFIDF_SETTINGS["min_df"]
        if kept.sum() > max_features:
            frequency = np.asarray(self.counts.sum(axis=0)).ravel()
            most_frequent = np.flatnonzero(kept)[(-frequency[kept]).argsort()[:max_features]]
            kept = np.zeros_like(kept)
            kept[most_frequent] = True
        columns = np.flatnonzero(kept)
        if not columns.size:
            raise ValueError(f"no word n-gram is in {TFIDF_SETTINGS['min_df']} of the {self.counts.shape[0]} training prompts: too few for the TF-IDF expert")
        idf = np.log((self.counts.shape[0] + 1) / (document_frequency[columns].astype(np.float64) + 1)) + 1
        return columns, idf, self.weighted(columns, idf)

    def weighted(self, columns: np.ndarray, idf: np.ndarray) -> sparse.csr_matrix:
        """These rows as `TfidfVectorizer.transform` gives them for the vocabulary `columns`
        with `idf`: no second tokenisation of prompts already counted."""
        matrix = self.counts[:, columns]
        np.log(matrix.data, matrix.data)
        matrix.data += 1.0
        matrix.data *= idf[matrix.indices]
        return normalize(matrix, copy=False)


@dataclass
class ExpertInputs:
    """What the experts read, row for row: the prompts, their pooled embeddings and their
    answer-option features; their n-gram counts once `ngram_counts` has computed them."""

    prompts: list[str]
    pooled: np.ndarray
    answer_options: np.ndarray
    ngrams: NgramCounts | None = None

    def rows(self, rows: np.ndarray) -> ExpertInputs:
        ngrams = self.ngrams.rows(rows) if self.ngrams is not None else None
        return ExpertInputs([self.prompts[i] for i in rows], self.pooled[rows], self.answer_options[rows], ngrams)

    def ngram_counts(self) -> NgramCounts:
        if self.ngrams is None:
            self.ngrams = NgramCounts.of(self.prompts)
        return self.ngrams

    def embedding(self) -> np.ndarray:
        """The pooled embedding and the prompt's log character count (long questions are harder)."""
        log_length = np.log1p([len(p) for p in self.prompts])
        return np.column_stack([self.pooled.astype(np.float64), log_length])


@dataclass
class LeaveOneOutRidge:
    """Ridge with alpha picked from RIDGE_ALPHAS by leave-one-out error (one SVD); `standardize`
    fits on unit-variance columns (features on unlike scales), the weights stay in raw units."""

    weights: np.ndarray
    intercept: float
    alpha: float

    @classmethod
    def fit(cls, inputs: np.ndarray, gain: np.ndarray, standardize: bool = False) -> LeaveOneOutRidge:
        inputs = inputs.astype(np.float64)
        mean_x, mean_y = inputs.mean(0), gain.mean()
        scale = inputs.std(0) if standardize else np.ones(inputs.shape[1])
        scale[scale == 0] = 1.0  # a constant column is all zeros once centred
        u, s, vt = np.linalg.svd((inputs - mean_x) / scale, full_matrices=False)
        projected = u.T @ (gain - mean_y)
        errors = []
        for alpha in RIDGE_ALPHAS:
            shrink = s**2 / (s**2 + alpha)
            residual = gain - mean_y - u @ (shrink * projected)
            leverage = (u**2) @ shrink + 1.0 / len(gain)  # the intercept's leverage too
            errors.append(np.mean((residual / (1.0 - leverage)) ** 2))
        alpha = RIDGE_ALPHAS[int(np.argmin(errors))]
        weights = vt.T @ (s / (s**2 + alpha) * projected) / scale
        return cls(weights, float(mean_y - mean_x @ weights), float(alpha))

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return inputs @ self.weights + self.intercept


@dataclass
class TfidfRidge:
    """Ridge on TF-IDF word uni- and bigrams: the subject's and the question's own words."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    weights: np.ndarray
    intercept: float
    # the n-gram counts' terms it was fitted on and its vocabulary's columns among them, so the
    # cross-fitting folds' held-out rows are weighted from their counts (unset once reloaded)
    counted_terms: np.ndarray | None = field(default=None, repr=False)
    columns: np.ndarray | None = field(default=None, repr=False)
    analyzer: Callable[[str], list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.analyzer = TfidfVectorizer(**TFIDF_SETTINGS).build_analyzer()

    @classmethod
    def fit(cls, ngrams: NgramCounts, gain: np.ndarray, alpha: float) -> TfidfRidge:
        columns, idf, matrix = ngrams.tfidf()
        model = Ridge(alpha=alpha).fit(matrix, gain)
        vocabulary = {str(term): i for i, term in enumerate(ngrams.terms[columns])}
        return cls(vocabulary, idf, model.coef_, float(model.intercept_), ngrams.terms, columns)

    def predict(self, prompts: Sequence[str], ngrams: NgramCounts | None = None) -> np.ndarray:
        """Predictions for `prompts`; from `ngrams`, their counts, when counted with the fit's terms."""
        if ngrams is not None and ngrams.terms is self.counted_terms:
            return ngrams.weighted(self.columns, self.idf) @ self.weights + self.intercept
        return np.array([self._predict_one(prompt) for prompt in prompts]) + self.intercept

    def _predict_one(self, prompt: str) -> float:
        """`TfidfVectorizer.transform` of one prompt (sublinear tf, idf, L2) times the weights,
        without sklearn's input checks, which were most of routing one prompt's experts (0.93 ms
        for all three through `transform`, 0.21 now)."""
        terms = [self.vocabulary[term] for term in self.analyzer(prompt) if term in self.vocabulary]
        if not terms:
            return 0.0
        columns, counts = np.unique(terms, return_counts=True)
        values = (1.0 + np.log(counts)) * self.idf[columns]
        return float(values @ self.weights[columns]) / float(np.sqrt(values @ values))


# the leave-one-out ridge experts: name -> (state prefix, their inputs, standardised)
RIDGE_EXPERTS = {
    "embedding_ridge": ("embedding", ExpertInputs.embedding, False),
    "options_ridge": ("options", lambda inputs: inputs.answer_options, True),
}


@dataclass
class LinearExperts:
    """The configured experts fitted on all training queries; `predict` gives (n, experts)."""

    names: tuple[str, ...]
    ridges: dict[str, LeaveOneOutRidge]  # by expert name (RIDGE_EXPERTS)
    tfidf: TfidfRidge | None

    @classmethod
    def fit(cls, names: Sequence[str], inputs: ExpertInputs, gain: np.ndarray, tfidf_alpha: float) -> LinearExperts:
        unknown = set(names) - set(EXPERTS)
        if unknown:
            raise ValueError(f"unknown experts {sorted(unknown)}; known: {list(EXPERTS)}")
        ridges = {}
        for name in names:
            if name in RIDGE_EXPERTS:
                _, columns, standardize = RIDGE_EXPERTS[name]
                ridges[name] = LeaveOneOutRidge.fit(columns(inputs), gain, standardize)
        tfidf = TfidfRidge.fit(inputs.ngram_counts(), gain, tfidf_alpha) if "tfidf_ridge" in names else None
        return cls(tuple(names), ridges, tfidf)

    def predict(self, inputs: ExpertInputs) -> np.ndarray:
        columns = []
        for name in self.names:
            if name in RIDGE_EXPERTS:
                columns.append(self.ridges[name].predict(RIDGE_EXPERTS[name][1](inputs)))
            else:
                columns.append(self.tfidf.predict(inputs.prompts, inputs.ngrams))
        return np.column_stack(columns) if columns else np.zeros((len(inputs.prompts), 0))

    def constant(self) -> list[bool]:
        """Per expert, whether it predicts one value whatever the query: a ridge whose inputs
        did not vary (answer options where no training prompt has any). Its cross-fitted
        predictions still differ by fold (each fold's mean gain), which ranks nothing."""
        return [name in self.ridges and not self.ridges[name].weights.any() for name in self.names]

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {}
        for name, ridge in self.ridges.items():
            prefix = RIDGE_EXPERTS[name][0]
            arrays |= {f"{prefix}.weights": ridge.weights, f"{prefix}.intercept": np.array([ridge.intercept]), f"{prefix}.alpha": np.array([ridge.alpha])}
        if self.tfidf is not None:
            arrays |= {"tfidf.idf": self.tfidf.idf, "tfidf.weights": self.tfidf.weights, "tfidf.intercept": np.array([self.tfidf.intercept])}
        return arrays

    def vocabulary(self) -> dict[str, int]:
        return self.tfidf.vocabulary if self.tfidf is not None else {}

    @classmethod
    def from_state(cls, names: Sequence[str], arrays: dict[str, np.ndarray], vocabulary: dict[str, int]) -> LinearExperts:
        ridges = {}
        for name in names:
            if name in RIDGE_EXPERTS:
                prefix = RIDGE_EXPERTS[name][0]
                ridges[name] = LeaveOneOutRidge(arrays[f"{prefix}.weights"], arrays[f"{prefix}.intercept"].item(), arrays[f"{prefix}.alpha"].item())
        tfidf = None
        if "tfidf_ridge" in names:
            tfidf = TfidfRidge(vocabulary, arrays["tfidf.idf"], arrays["tfidf.weights"], arrays["tfidf.intercept"].item())
        return cls(tuple(names), ridges, tfidf)


def cross_fitted(names: Sequence[str], inputs: ExpertInputs, gain: np.ndarray, tfidf_alpha: float, folds: int, seed: int) -> np.ndarray:
    """(n, experts) predictions where each row comes from experts fitted without its fold."""
    fold_of = np.random.default_rng(seed).permutation(len(gain)) % folds
    if "tfidf_ridge" in names:
        inputs.ngram_counts()  # once, for every fold's fit
    predictions = np.zeros((len(gain), len(names)))
    for fold in range(folds):
        held_out, rest = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
        experts = LinearExperts.fit(names, inputs.rows(rest), gain[rest], tfidf_alpha)
        predictions[held_out] = experts.predict(inputs.rows(held_out))
    return predictions
