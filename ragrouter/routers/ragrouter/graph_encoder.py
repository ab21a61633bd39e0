"""GraphSAGE over dependency graphs: node label embeddings + aligned token vectors -> node states."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import SAGEConv


class SyntaxGraphEncoder(nn.Module):
    """Node input = POS embedding, dependency embedding, log(1 + depth), and the (projected)
    encoder token vector aligned with the node (zeros with an `unaligned` flag where none is)."""

    def __init__(self, n_pos: int, n_dep: int, hidden: int, layers: int = 2, label_dim: int = 16, dropout: float = 0.1):
        super().__init__()
        self.pos = nn.Embedding(n_pos, label_dim)
        self.dep = nn.Embedding(n_dep, label_dim)
        self.input = nn.Linear(2 * label_dim + 2 + hidden, hidden)
        self.convs = nn.ModuleList(SAGEConv(hidden, hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, pos: torch.Tensor, dep: torch.Tensor, depth: torch.Tensor, token_vectors: torch.Tensor, aligned: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """(N,) label ids, (N,) depth, (N, hidden) token vectors, (N,) bool aligned, (2, E) -> (N, hidden)."""
        tokens = token_vectors * aligned.unsqueeze(-1)
        flags = torch.stack([torch.log1p(depth), (~aligned).float()], dim=-1)
        x = torch.relu(self.input(torch.cat([self.pos(pos), self.dep(dep), flags, tokens], dim=-1)))
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + self.dropout(torch.relu(conv(x, edge_index))))
        return x
