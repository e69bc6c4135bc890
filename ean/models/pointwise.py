"""A grouped 1x1 convolution that keeps the channels-last layout of the EAB."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupedPointwise(nn.Module):
    """Equivalent to ``nn.Conv2d(in, out, 1, groups=groups, bias=False)``, with the same weight shape.

    Runs in the channels-last layout (the input is made channels-last; a no-op inside the EAB, which works
    in that layout): on CPU oneDNN's grouped 1x1 convolution there is 2-6x faster forward + backward than in
    NCHW or as batched matrix products (figures: benchmarks/RESULTS.md, section "Model training step").

    Shapes: (N, C_in, H, W) -> (N, C_out, H, W), channels-last.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels} -> {out_channels} must be divisible by groups={groups}")
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, 1, 1))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x.contiguous(memory_format=torch.channels_last), self.weight, groups=self.groups)
