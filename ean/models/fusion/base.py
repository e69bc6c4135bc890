"""The fusion contract and the one operation every matrix fusion shares."""

from __future__ import annotations

import torch
from torch import nn


def apply_matrix(x: torch.Tensor, matrix: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Mixes channels per clip: ``y[n, :, t, h, w] = M[n] @ x[n, :, t, h, w]``, as batched matmuls.

    Args:
        x: (N*T, C, H, W) features.
        matrix: (N, C, C), one matrix per clip.
        num_segments: T.

    Returns:
        (N*T, C, H, W).
    """
    nt, c, h, w = x.shape
    clips = x.view(nt // num_segments, num_segments, c, h * w)  # no transpose: M broadcasts over time
    mixed = torch.matmul(matrix.to(x.dtype).unsqueeze(1), clips)  # (N, 1, C, C) @ (N, T, C, HW)
    return mixed.view(nt, c, h, w)


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
