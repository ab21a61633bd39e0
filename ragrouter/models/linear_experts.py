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
from typing import Any, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge

EXPERTS = ("embedding_ridge", "tfidf_ridge", "options_ridge")
RIDGE_ALPHAS = tuple(np.logspace(-1, 3, 13))  # chosen per fit by exact leave-one-out error
TFIDF_SETTINGS: dict[str, Any] = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True, "max_features": 50_000, "dtype": np.float64}


@dataclass
class ExpertInputs:
    """What the experts read, row for row: the prompts, their pooled embeddings and their
    answer-option features."""

    prompts: list[str]
    pooled: np.ndarray
    answer_options: np.ndarray

    def rows(self, rows: np.ndarray) -> ExpertInputs:
        return ExpertInputs([self.prompts[i] for i in rows], self.pooled[rows], self.answer_options[rows])

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
    vectorizer: TfidfVectorizer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """The vectorizer rebuilt once from the vocabulary and idf (routing one prompt stays cheap)."""
        self.vectorizer = TfidfVectorizer(**TFIDF_SETTINGS, vocabulary=self.vocabulary)
        self.vectorizer.idf_ = self.idf

    @classmethod
    def fit(cls, prompts: Sequence[str], gain: np.ndarray, alpha: float) -> TfidfRidge:
        vectorizer = TfidfVectorizer(**TFIDF_SETTINGS)
        matrix = vectorizer.fit_transform(prompts)
        model = Ridge(alpha=alpha).fit(matrix, gain)
        vocabulary = {term: int(column) for term, column in vectorizer.vocabulary_.items()}
        return cls(vocabulary, vectorizer.idf_, model.coef_, float(model.intercept_))

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        matrix: sparse.csr_matrix = self.vectorizer.transform(prompts)
        return matrix @ self.weights + self.intercept


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
        tfidf = TfidfRidge.fit(inputs.prompts, gain, tfidf_alpha) if "tfidf_ridge" in names else None
        return cls(tuple(names), ridges, tfidf)

    def predict(self, inputs: ExpertInputs) -> np.ndarray:
        columns = []
        for name in self.names:
            if name in RIDGE_EXPERTS:
                columns.append(self.ridges[name].predict(RIDGE_EXPERTS[name][1](inputs)))
            else:
                columns.append(self.tfidf.predict(inputs.prompts))
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
    predictions = np.zeros((len(gain), len(names)))
    for fold in range(folds):
        held_out, rest = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
        experts = LinearExperts.fit(names, inputs.rows(rest), gain[rest], tfidf_alpha)
        predictions[held_out] = experts.predict(inputs.rows(held_out))
    return predictions
