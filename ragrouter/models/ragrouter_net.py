"""The RAGRouter network: semantic tokens + syntactic graph, fused, plus retrieval features -> logit.

Ablation switches (the paper's Tables 5 and 6): `syntax=False` keeps the semantic branch
only; `fusion="concat"` pools both branches and concatenates them instead of cross-attention;
`retrieval=False` drops the neighbour features.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_batch

from ragrouter.features.query_features import QueryFeatures
from ragrouter.models.fusion import CrossModalFusion, masked_mean
from ragrouter.models.graph_encoder import SyntaxGraphEncoder

FUSIONS = ("attention", "concat")


@dataclass
class Architecture:
    """The network's shape and ablation switches (RAGRouterConfig inherits these fields)."""

    hidden: int = 64
    heads: int = 4
    sage_layers: int = 2
    dropout: float = 0.1
    syntax: bool = True
    fusion: Literal["attention", "concat"] = "attention"
    retrieval: bool = True

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")

    def architecture(self) -> Architecture:
        """Just these fields (a subclass's other settings dropped)."""
        return Architecture(**{f.name: getattr(self, f.name) for f in fields(Architecture)})


@dataclass
class InputSizes:
    """What the data fixes: encoder width, label vocabularies, retrieval feature count."""

    token_dim: int
    n_pos: int
    n_dep: int
    retrieval_dim: int


@dataclass
class NetBatch:
    tokens: torch.Tensor  # (B, T, d) float32
    token_mask: torch.Tensor  # (B, T) bool
    pooled: torch.Tensor  # (B, d)
    graphs: Batch  # pos, dep, depth, token_position (into the flattened B*T tokens, -1 = none), edge_index, batch
    retrieval: torch.Tensor  # (B, F)

    @classmethod
    def collate(cls, features: QueryFeatures, rows: np.ndarray, retrieval: np.ndarray) -> NetBatch:
        queries = [features.query(int(r)) for r in rows]
        width = max(len(q["token_states"]) for q in queries)
        tokens = torch.zeros(len(queries), width, features.pooled.shape[1])
        mask = torch.zeros(len(queries), width, dtype=torch.bool)
        graphs = []
        for b, q in enumerate(queries):
            length = len(q["token_states"])
            tokens[b, :length], mask[b, :length] = torch.from_numpy(q["token_states"].astype(np.float32)), True
            token = torch.from_numpy(q["node_token"])
            graphs.append(
                Data(
                    pos=torch.from_numpy(q["node_pos"]),
                    dep=torch.from_numpy(q["node_dep"]),
                    depth=torch.from_numpy(q["node_depth"]),
                    # not named *index*: PyG would offset it by the node count when batching
                    token_position=torch.where(token >= 0, token + b * width, -1),
                    edge_index=torch.from_numpy(q["edges"]),
                    num_nodes=len(token),
                )
            )
        return cls(
            tokens=tokens,
            token_mask=mask,
            pooled=torch.from_numpy(features.pooled[rows].astype(np.float32)),
            graphs=Batch.from_data_list(graphs),
            retrieval=torch.from_numpy(retrieval[rows]),
        )


class RAGRouterNet(nn.Module):
    def __init__(self, sizes: InputSizes, architecture: Architecture):
        super().__init__()
        self.sizes, self.config = sizes, architecture.architecture()
        config, h = self.config, architecture.hidden
        self.token_proj = nn.Linear(sizes.token_dim, h)
        self.pooled_proj = nn.Linear(sizes.token_dim, h)
        fused_dim = h
        if config.syntax:
            self.graph = SyntaxGraphEncoder(sizes.n_pos, sizes.n_dep, h, config.sage_layers, dropout=config.dropout)
            self.fusion = CrossModalFusion(h, config.heads) if config.fusion == "attention" else None
            fused_dim = 2 * h
        retrieval_dim = h if config.retrieval else 0
        if config.retrieval:
            self.retrieval_proj = nn.Sequential(nn.Linear(sizes.retrieval_dim, h), nn.ReLU())
        self.head = nn.Sequential(
            nn.Linear(fused_dim + h + retrieval_dim + 1, h), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(h, 1)
        )

    def forward(self, batch: NetBatch) -> torch.Tensor:
        """Logits of "strong needed", (B,)."""
        tokens = self.token_proj(batch.tokens)
        parts = [self._fused(tokens, batch) if self.config.syntax else masked_mean(tokens, batch.token_mask)]
        parts.append(self.pooled_proj(batch.pooled))
        if self.config.retrieval:
            parts.append(self.retrieval_proj(batch.retrieval))
        parts.append(torch.log1p(batch.token_mask.sum(1, keepdim=True).float()))
        return self.head(torch.cat(parts, dim=-1)).squeeze(-1)

    def _fused(self, tokens: torch.Tensor, batch: NetBatch) -> torch.Tensor:
        g = batch.graphs
        aligned = g.token_position >= 0
        token_vectors = tokens.reshape(-1, tokens.shape[-1])[g.token_position.clamp(min=0)]
        nodes = self.graph(g.pos, g.dep, g.depth, token_vectors, aligned, g.edge_index)
        nodes, node_mask = to_dense_batch(nodes, g.batch, batch_size=len(tokens))
        if self.fusion is None:
            return torch.cat([masked_mean(tokens, batch.token_mask), masked_mean(nodes, node_mask)], dim=-1)
        return self.fusion(tokens, batch.token_mask, nodes, node_mask)
