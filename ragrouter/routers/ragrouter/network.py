"""The RAGRouter network: semantic tokens + syntactic graph, fused, plus retrieval features -> logit.

Its shape and ablation switches are `NetworkConfig`'s.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch

from ragrouter.features.query_features import QueryFeatures
from ragrouter.routers.ragrouter.config import NetworkConfig
from ragrouter.routers.ragrouter.fusion import CrossModalFusion, masked_mean
from ragrouter.routers.ragrouter.graph_encoder import SyntaxGraphEncoder

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
    node_mask: torch.Tensor  # (B, N) bool: the real nodes of each graph, padded to the largest

    @classmethod
    def collate(cls, features: QueryFeatures, rows: np.ndarray, retrieval: np.ndarray) -> NetBatch:
        """The rows' inputs, gathered from the flat arrays in a few indexings: a P1 fold's 12k
        queries in batches of 64 take 1.4 s instead of 4.5 with one PyG `Data` per query, one
        prompt 0.31 ms instead of 0.46 (medians; the same tensors, tested)."""
        rows = np.asarray(rows, dtype=np.int64)
        arrays = features.subset(rows).arrays
        token_sizes, node_sizes = np.diff(arrays["token_offsets"]), np.diff(arrays["node_offsets"])
        width = int(token_sizes.max(initial=0))
        query_of_token = np.repeat(np.arange(len(rows)), token_sizes)
        slot = np.arange(len(query_of_token)) - np.repeat(arrays["token_offsets"][:-1], token_sizes)
        tokens = torch.zeros(len(rows), width, features.pooled.shape[1])
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        tokens[query_of_token, slot] = torch.from_numpy(arrays["token_states"].astype(np.float32))
        mask[query_of_token, slot] = True
        query_of_node = np.repeat(np.arange(len(rows)), node_sizes)
        node_token = arrays["node_token"]
        first_node = np.repeat(arrays["node_offsets"][:-1], np.diff(arrays["edge_offsets"]))
        graphs = Batch(  # PyG's disjoint union of the graphs, as Batch.from_data_list makes it
            pos=torch.from_numpy(arrays["node_pos"]),
            dep=torch.from_numpy(arrays["node_dep"]),
            depth=torch.from_numpy(arrays["node_depth"]),
            token_position=torch.from_numpy(np.where(node_token >= 0, node_token + query_of_node * width, -1).astype(node_token.dtype)),
            edge_index=torch.from_numpy(arrays["edges"] + first_node.astype(arrays["edges"].dtype)),
            batch=torch.from_numpy(query_of_node),
            ptr=torch.from_numpy(arrays["node_offsets"]),
        )
        node_mask = torch.from_numpy(np.arange(int(node_sizes.max(initial=0))) < node_sizes[:, None])
        pooled = torch.from_numpy(arrays["pooled"].astype(np.float32))
        return cls(tokens=tokens, token_mask=mask, pooled=pooled, graphs=graphs, retrieval=torch.from_numpy(retrieval[rows]), node_mask=node_mask)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """What the network reads, flat (the traced network's inputs)."""
        g = self.graphs
        return (self.tokens, self.token_mask, self.pooled, g.pos, g.dep, g.depth, g.token_position, g.edge_index, self.retrieval, self.node_mask)

    @classmethod
    def from_tensors(cls, tokens, token_mask, pooled, pos, dep, depth, token_position, edge_index, retrieval, node_mask) -> NetBatch:
        graphs = Batch(pos=pos, dep=dep, depth=depth, token_position=token_position, edge_index=edge_index)
        return cls(tokens=tokens, token_mask=token_mask, pooled=pooled, graphs=graphs, retrieval=retrieval, node_mask=node_mask)


class RAGRouterNet(nn.Module):
    def __init__(self, sizes: InputSizes, architecture: NetworkConfig):
        super().__init__()
        self.sizes, self.config = sizes, architecture
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
        node_states = self.graph(g.pos, g.dep, g.depth, token_vectors, aligned, g.edge_index)
        nodes = node_states.new_zeros(*batch.node_mask.shape, node_states.shape[-1])
        nodes[batch.node_mask] = node_states  # padded per graph, as torch_geometric's to_dense_batch
        if self.fusion is None:
            return torch.cat([masked_mean(tokens, batch.token_mask), masked_mean(nodes, batch.node_mask)], dim=-1)
        return self.fusion(tokens, batch.token_mask, nodes, batch.node_mask)


class _FlatInputs(nn.Module):
    """The network over NetBatch.tensors(): what torch.jit.trace can record."""

    def __init__(self, net: RAGRouterNet):
        super().__init__()
        self.net = net

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.net(NetBatch.from_tensors(*tensors))


def example_batch(sizes: InputSizes) -> NetBatch:
    """Two small random queries, padded (3 and 5 tokens; 2 and 4 nodes): what the scoring graph
    is traced on, whatever the data."""
    generator = torch.Generator().manual_seed(0)
    token_mask = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])
    node_mask = torch.tensor([[True] * 2 + [False] * 2, [True] * 4])
    edges = torch.tensor([[0, 1, 2, 3, 3, 4, 4, 5], [1, 0, 3, 2, 4, 3, 5, 4]])
    return NetBatch(
        tokens=torch.randn(2, 5, sizes.token_dim, generator=generator) * token_mask.unsqueeze(-1),
        token_mask=token_mask,
        pooled=torch.randn(2, sizes.token_dim, generator=generator),
        graphs=Batch(
            pos=torch.randint(sizes.n_pos, (6,), generator=generator),
            dep=torch.randint(sizes.n_dep, (6,), generator=generator),
            depth=torch.tensor([0, 1, 0, 1, 2, 3]),
            token_position=torch.tensor([0, -1, 5, 6, 8, 9]),
            edge_index=edges,
        ),
        retrieval=torch.randn(2, sizes.retrieval_dim, generator=generator),
        node_mask=node_mask,
    )


def scoring_forward(net: RAGRouterNet) -> Callable[[NetBatch], torch.Tensor]:
    """The trained network in eval mode as a frozen TorchScript graph of its inputs (shapes stay
    dynamic): one prompt's forward takes 0.41 ms instead of 1.15 (warm, two threads), which
    were mostly the modules' Python dispatch and MultiheadAttention's argument checks; the same
    logits (tested)."""
    net.eval()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices and tracer hints
        graph = torch.jit.freeze(torch.jit.trace(_FlatInputs(net).eval(), example_batch(net.sizes).tensors(), check_trace=False))
    return lambda batch: graph(*batch.tensors())
