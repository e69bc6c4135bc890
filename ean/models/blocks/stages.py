"""Multi-branch temporal and spatial stages: the channels split in three, one kernel per branch.

A branch is ``(kernel, dilation)``; kernel 1 is the identity. The EAB's temporal stage is
``[(1, 1), (3, 1), (3, 2)]`` (temporal receptive fields 1, 3, 5) and its spatial stage the same in 2D.
"""

from __future__ import annotations

import torch
from torch import nn

from ean.models.fusion.shuffle import split_sizes
from ean.models.temporal import TemporalConv

Branch = tuple[int, int]  # (kernel size, dilation)


def spatial_conv(channels: int, kernel: int, dilation: int, factorized: bool) -> nn.Module:
    """A k x k conv (or k x 1 then 1 x k when ``factorized``), same padding, no bias."""
    pad = dilation * (kernel // 2)
    if not factorized:
        return nn.Conv2d(channels, channels, kernel, padding=pad, dilation=dilation, bias=False)
    return nn.Sequential(
        nn.Conv2d(channels, channels, (kernel, 1), padding=(pad, 0), dilation=(dilation, 1), bias=False),
        nn.Conv2d(channels, channels, (1, kernel), padding=(0, pad), dilation=(1, dilation), bias=False),
    )


class BranchStage(nn.Module):
    """Splits channels into ``len(branches)`` groups, convolves each with its own kernel, concatenates.

    Args:
        channels: C, split as ``split_sizes(C, len(branches))``.
        num_segments: T.
        branches: (kernel, dilation) per group; kernel 1 passes the group through.
        axis: ``"temporal"`` (kernel k x 1 x 1) or ``"spatial"`` (1 x k x k).
        factorized: spatial k x k as k x 1 then 1 x k (the (1+1+1)D variant).

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W).
    """

    def __init__(self, channels: int, num_segments: int, branches: list[Branch], axis: str, factorized: bool = False):
        super().__init__()
        if axis not in ("temporal", "spatial"):
            raise ValueError(f"axis must be 'temporal' or 'spatial', got {axis!r}")
        self.sizes = split_sizes(channels, len(branches))
        convs = []
        for size, (kernel, dilation) in zip(self.sizes, branches, strict=True):
            if kernel == 1:
                convs.append(nn.Identity())
            elif axis == "temporal":
                convs.append(TemporalConv(size, size, num_segments, kernel, dilation))
            else:
                convs.append(spatial_conv(size, kernel, dilation, factorized))
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.sizes, dim=1)
        return torch.cat([conv(part) for conv, part in zip(self.convs, parts, strict=True)], dim=1)
