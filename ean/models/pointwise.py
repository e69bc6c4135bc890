"""A grouped 1x1 convolution computed as batched matrix products (oneDNN's grouped 1x1 conv is slow on CPU)."""

from __future__ import annotations

import math

import torch
from torch import nn


class GroupedPointwise(nn.Module):
    """Equivalent to ``nn.Conv2d(in, out, 1, groups=groups, bias=False)``, with the same weight shape.

    Each group's channels are mixed by one matrix product over all positions: ``(g, out/g, in/g) @ (N, g,
    in/g, H*W)``. Same multiply-accumulates as the convolution; faster forward and backward on CPU (figures:
    benchmarks/RESULTS.md, section "Model training step").

    Shapes: (N, C_in, H, W) -> (N, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels} -> {out_channels} must be divisible by groups={groups}")
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, 1, 1))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        weight = self.weight.view(g, -1, c // g)  # (g, out/g, in/g)
        out = torch.matmul(weight, x.reshape(n, g, c // g, h * w))  # (N, g, out/g, H*W)
        return out.view(n, -1, h, w)
