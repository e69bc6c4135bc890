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
    matrix = matrix.to(x.dtype).unsqueeze(1)  # (N, 1, C, C): M broadcasts over time
    if x.is_contiguous():
        mixed = torch.matmul(matrix, x.view(nt // num_segments, num_segments, c, h * w))  # (N, T, C, HW)
        return mixed.view(nt, c, h, w)
    # Channels-last (the EAB's layout): the same products transposed, (N, T, HW, C) @ M^T, so that the
    # output stays channels-last with no copy of x.
    rows = x.permute(0, 2, 3, 1).reshape(nt // num_segments, num_segments, h * w, c)
    mixed = torch.matmul(rows, matrix.transpose(-1, -2))  # (N, T, HW, C)
    return mixed.view(nt, h, w, c).permute(0, 3, 1, 2)


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
        """x, context (N*T, C, H, W) -> (N*T, C, H, W): x's channels mixed per clip by ``matrix(context)``."""
        return apply_matrix(x, self.matrix(context), self.num_segments)
