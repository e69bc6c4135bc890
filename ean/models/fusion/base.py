"""The fusion contract and the one operation every matrix fusion shares."""

from __future__ import annotations

import torch
from torch import nn


def apply_matrix(x: torch.Tensor, matrix: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Mixes channels per clip: ``y[n, :, t, h, w] = M[n] @ x[n, :, t, h, w]``, as one batched matmul.

    Args:
        x: (N*T, C, H, W) features.
        matrix: (N, C, C), one matrix per clip.
        num_segments: T.

    Returns:
        (N*T, C, H, W).
    """
    nt, c, h, w = x.shape
    n = nt // num_segments
    clips = x.view(n, num_segments, c, h * w).transpose(1, 2).reshape(n, c, num_segments * h * w)
    mixed = torch.bmm(matrix.to(x.dtype), clips)
    return mixed.view(n, c, num_segments, h * w).transpose(1, 2).reshape(nt, c, h, w)


class Fusion(nn.Module):
    """Base of the fusion variants: ``forward(x, context)`` mixes the channels of ``x`` by ``matrix(context)``.

    Subclasses override ``matrix`` (a per-clip (N, C, C) matrix) or ``forward`` (a fixed permutation).
    """

    def __init__(self, channels: int, num_segments: int):
        super().__init__()
        self.channels, self.num_segments = channels, num_segments

    def matrix(self, context: torch.Tensor) -> torch.Tensor | None:
        """(N*T, C, H, W) -> (N, C, C), or None where the fusion is not a learned matrix."""
        return None

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return apply_matrix(x, self.matrix(context), self.num_segments)
