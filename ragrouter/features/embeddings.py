"""Embeddings of a record set: computed once per (encoder, prompt set), aligned by id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragrouter.data.records import RoutingRecords
from ragrouter.features.query_features import QueryFeatures
from ragrouter.features.semantic import PACKAGED_ENCODERS, Encoder


@dataclass
class Embeddings:
    """`vectors[i]` embeds the record `ids[i]` with `encoder` (name and max_seq_length)."""

    ids: list[str]
    vectors: np.ndarray
    encoder: Encoder

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.vectors):
            raise ValueError(f"{len(self.ids)} ids but {len(self.vectors)} vectors")

    def rows(self, ids: list[str] | np.ndarray) -> np.ndarray:
        """Vectors of the given ids, in that order."""
        position = {record_id: i for i, record_id in enumerate(self.ids)}
        return self.vectors[[position[i] for i in ids]]


def embed_records(records: RoutingRecords, encoder: Encoder, progress: bool = True) -> Embeddings:
    vectors = encoder.encode(records.prompts, progress=progress)
    return Embeddings(ids=records.frame["id"].tolist(), vectors=vectors, encoder=encoder)


def pooled_equals_encoding(encoder_identity: str, encoder: Encoder) -> bool:
    """Whether RAGRouter's pooled vectors from `encoder_identity` are `encoder.encode`'s vectors:
    the same encoder, length and dtype, and one whose sentence pooling is known to be the mean of
    the token states, L2-normalised (the packaged ones; a hub encoder may pool otherwise). Equal
    up to the dtype's rounding: 1e-7 in float32, 1e-3 in bfloat16 (batches pad differently)."""
    return encoder.name in PACKAGED_ENCODERS and encoder_identity == encoder.identity


def embeddings_from_features(records: RoutingRecords, features: QueryFeatures, encoder: Encoder) -> Embeddings:
    """The pipeline's embeddings taken from RAGRouter's features (`encoder.encode`'s vectors, see
    `pooled_equals_encoding`), so the encoder runs over the records once instead of twice."""
    if not pooled_equals_encoding(features.encoder_identity, encoder):
        raise ValueError(f"features from {features.encoder_identity} do not hold {encoder.identity}'s sentence embeddings")
    ids = records.frame["id"].tolist()
    if features.ids != ids:
        raise ValueError("the features were extracted from other records (their ids differ)")
    return Embeddings(ids=ids, vectors=np.ascontiguousarray(features.pooled, dtype=np.float32), encoder=encoder)
