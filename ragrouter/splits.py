"""Deterministic evaluation splits for the protocols of DESIGN.md (P1-P4 by default; P5,
MMLU + GSM8K -> MT-Bench, where the run reads MT-Bench: configs/benchmark.yaml).

A split table has one row per (protocol, fold, id, role) with role "train" or "test". Folds
come from stable hashes, so the same data gives the same splits on any machine and in any
row order, and their fingerprint tells whether two evaluations used the same split. Prompts
that read the same after normalisation (`prompt_key`) share a fold, so a near-copy of a test
prompt is never trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ragrouter.data.records import RoutingRecords, prompt_hash, prompt_key
from ragrouter.typed_config import TypedConfig

ProtocolKind = Literal["kfold", "group_kfold", "transfer"]
SPLIT_COLUMNS = ("protocol", "fold", "id", "role")


@dataclass
class ProtocolConfig(TypedConfig):
    """One evaluation protocol.

    kfold: folds by stable hash of the prompt within `source`; group_kfold: whole groups
    (MMLU subjects) per fold, so no group is in both train and test; transfer: train on
    `train_source` (one source's name or a list of them), test on `source`.
    """

    name: str
    kind: ProtocolKind
    source: str
    folds: int = 5
    train_source: str | list[str] | None = None
    scored_folds: int | None = None  # score the first n folds only (1: one held-out fold); None: all

    def __post_init__(self) -> None:
        if self.kind not in ("kfold", "group_kfold", "transfer"):
            raise ValueError(f"protocol {self.name}: unknown kind {self.kind!r}")
        if self.kind == "transfer" and not self.train_source:
            raise ValueError(f"protocol {self.name}: a transfer protocol needs train_source")
        if self.kind != "transfer" and self.folds < 2:
            raise ValueError(f"protocol {self.name}: folds must be >= 2")
        if self.scored_folds is not None and not 1 <= self.scored_folds <= self.folds:
            raise ValueError(f"protocol {self.name}: scored_folds must be between 1 and folds ({self.folds}), got {self.scored_folds}")


    @property
    def train_sources(self) -> list[str]:
        """The sources a transfer protocol trains on ([] for the others)."""
        if self.train_source is None:
            return []
        return [self.train_source] if isinstance(self.train_source, str) else list(self.train_source)

    @property
    def sources(self) -> set[str]:
        """The sources this protocol reads; it runs only when all are in the data."""
        return {self.source, *self.train_sources}


DEFAULT_PROTOCOLS: tuple[ProtocolConfig, ...] = (
    ProtocolConfig("P1", "kfold", "mmlu"),
    ProtocolConfig("P2", "group_kfold", "mmlu"),
    ProtocolConfig("P3", "kfold", "gsm8k"),
    ProtocolConfig("P4", "transfer", "gsm8k", folds=1, train_source="mmlu"),
)


def _group_folds(groups: pd.Series, folds: int) -> np.ndarray:
    """Assign whole groups to folds, largest first onto the lightest fold (ties by name hash)."""
    sizes = groups.value_counts()
    order = sorted(sizes.index, key=lambda g: (-sizes[g], hashlib.sha256(str(g).encode()).hexdigest()))
    load = [0] * folds
    fold_of: dict[str, int] = {}
    for group in order:
        lightest = min(range(folds), key=lambda f: (load[f], f))
        fold_of[group] = lightest
        load[lightest] += int(sizes[group])
    return groups.map(fold_of).to_numpy()


def _protocol_rows(frame: pd.DataFrame, protocol: ProtocolConfig) -> list[pd.DataFrame]:
    test = frame[frame["source"] == protocol.source]
    if protocol.kind == "transfer":
        train = frame[frame["source"].isin(protocol.train_sources)]
        return [_rows(protocol.name, 0, train["id"], "train"), _rows(protocol.name, 0, test["id"], "test")]
    if protocol.kind == "kfold":
        fold = np.array([prompt_hash(p) % protocol.folds for p in _fold_prompts(test["prompt"])])
    else:
        if test["group"].nunique() < protocol.folds:
            raise ValueError(
                f"protocol {protocol.name}: {test['group'].nunique()} groups in source "
                f"{protocol.source!r}, fewer than {protocol.folds} folds"
            )
        fold = _group_folds(test["group"], protocol.folds)
    parts = []
    for k in range(protocol.scored_folds or protocol.folds):
        in_fold = fold == k
        parts.append(_rows(protocol.name, k, test["id"][~in_fold], "train"))
        parts.append(_rows(protocol.name, k, test["id"][in_fold], "test"))
    return parts


def _fold_prompts(prompts: pd.Series) -> pd.Series:
    """The prompt whose hash places each record: the first (in code-point order) of those that
    read the same after normalisation, so they share a fold; a prompt without such a twin
    hashes as itself, as before normalisation was considered."""
    keys = prompts.map(prompt_key)
    return prompts.groupby(keys).transform("min")


def _rows(protocol: str, fold: int, ids: pd.Series, role: str) -> pd.DataFrame:
    return pd.DataFrame({"protocol": protocol, "fold": fold, "id": ids.to_numpy(), "role": role})


def make_splits(records: RoutingRecords, protocols: tuple[ProtocolConfig, ...] | list[ProtocolConfig]) -> pd.DataFrame:
    """The split table of every protocol whose sources are present in the records.

    Protocols naming an absent source are skipped (a test config may hold MMLU only);
    `skipped_protocols` tells which.
    """
    frame = records.frame
    present = set(frame["source"])
    parts: list[pd.DataFrame] = []
    for protocol in protocols:
        if protocol.sources <= present:
            parts.extend(_protocol_rows(frame, protocol))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SPLIT_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def skipped_protocols(records: RoutingRecords, protocols: list[ProtocolConfig] | tuple[ProtocolConfig, ...]) -> list[str]:
    present = set(records.frame["source"])
    return [p.name for p in protocols if not p.sources <= present]


def split_fingerprint(splits: pd.DataFrame, protocol: str, records: RoutingRecords) -> str:
    """Hash of one protocol's assignment and of its records' outcomes (both models' qualities):
    equal fingerprints mean the same evaluation, so relabelled data never passes for the split
    a champion was scored on."""
    rows = splits[splits["protocol"] == protocol].sort_values(["fold", "role", "id"])
    quality = records.frame.set_index("id").loc[rows["id"], ["strong_quality", "weak_quality"]]
    payload = "\n".join(
        f"{f}\t{r}\t{i}\t{s!r}\t{w!r}"
        for f, r, i, s, w in zip(rows["fold"], rows["role"], rows["id"], quality["strong_quality"], quality["weak_quality"])
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
