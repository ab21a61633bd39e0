"""Embeddings of a record set: computed once per (encoder, prompt set), aligned by id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragrouter.data.records import RoutingRecords
from ragrouter.features.semantic import Encoder


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
