"""A small pre-norm Transformer over object tokens, with BatchNorm over tokens in place of LayerNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TokenBatchNorm(nn.Module):
    """BatchNorm1d over every token of every clip: statistics over N * L samples (works with one clip).

    Shapes: (N, L, D) -> (N, L, D).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        return self.bn(x.reshape(n * length, d)).view(n, length, d)


class Attention(nn.Module):
    """Multi-head self-attention without a bias in qkv. (N, L, D) -> (N, L, D)."""

    def __init__(self, dim: int, heads: int = 8, head_dim: int = 64):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(n, length, self.heads * self.head_dim))


class FeedForward(nn.Module):
    """Three Linear layers with BN + ReLU between them. (N, L, D) -> (N, L, D)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(dim, hidden), TokenBatchNorm(hidden)
        self.fc2, self.bn2 = nn.Linear(hidden, hidden), TokenBatchNorm(hidden)
        self.fc3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.fc2(x)))
        return self.fc3(x)


class TransformerLayer(nn.Module):
    """Pre-norm residual layer: ``x + attn(norm(x))`` then ``x + ffn(norm(x))``. (N, L, D) -> (N, L, D)."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_hidden: int):
        super().__init__()
        self.norm1, self.attn = TokenBatchNorm(dim), Attention(dim, heads, head_dim)
        self.norm2, self.ffn = TokenBatchNorm(dim), FeedForward(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class Transformer(nn.Sequential):
    """``depth`` TransformerLayers. (N, L, D) -> (N, L, D)."""

    def __init__(self, dim: int, depth: int = 2, heads: int = 8, head_dim: int = 64, mlp_hidden: int = 512):
        super().__init__(*[TransformerLayer(dim, heads, head_dim, mlp_hidden) for _ in range(depth)])
