"""Cross-modal fusion: semantic token states attend to syntactic node states and back."""

from __future__ import annotations

import torch
from torch import nn


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, h) states, (B, L) bool mask of real positions -> (B, h); zeros where none is real."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class CrossModalFusion(nn.Module):
    """Two torch.nn.MultiheadAttention blocks (tokens -> nodes, nodes -> tokens), each with a
    residual and LayerNorm, mean-pooled over real positions and concatenated: (B, 2h).

    A learned null key/value joins every key set, so a query whose parse has no node (or all
    padding) still attends somewhere and never produces NaN.
    """

    def __init__(self, hidden: int, heads: int = 4):
        super().__init__()
        # No dropout on the attention weights: on CPU, masking the (B, heads, T, N) tensor
        # costs more than the attention itself.
        self.tokens_to_nodes = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.nodes_to_tokens = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.null = nn.Parameter(torch.zeros(1, 1, hidden))
        self.token_norm = nn.LayerNorm(hidden)
        self.node_norm = nn.LayerNorm(hidden)

    def _attend(self, attention: nn.MultiheadAttention, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        batch = keys.shape[0]
        keys = torch.cat([self.null.expand(batch, 1, -1), keys], dim=1)
        key_mask = torch.cat([key_mask.new_ones(batch, 1), key_mask], dim=1)
        attended, _ = attention(queries, keys, keys, key_padding_mask=~key_mask, need_weights=False)
        return attended

    def forward(self, tokens: torch.Tensor, token_mask: torch.Tensor, nodes: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, h) with mask (B, T); nodes (B, N, h) with mask (B, N) -> (B, 2h)."""
        fused_tokens = self.token_norm(tokens + self._attend(self.tokens_to_nodes, tokens, nodes, node_mask))
        fused_nodes = self.node_norm(nodes + self._attend(self.nodes_to_tokens, nodes, tokens, token_mask))
        return torch.cat([masked_mean(fused_tokens, token_mask), masked_mean(fused_nodes, node_mask)], dim=-1)
