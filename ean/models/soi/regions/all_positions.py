"""Every position is a token: dense interaction over T x H x W tokens (Table 7, 'All')."""

from __future__ import annotations

import torch
from torch import nn

from ean.models.registries import REGIONS


@REGIONS.register("all")
class AllPositions(nn.Module):
    """Returns no weight maps, which the SOI-Tr reads as 'every position is a token'.

    Shapes: features (N, D, T, H, W) -> None (tokens are the T*H*W positions).
    """

    #: ``num_regions`` is taken (the family's contract) but decides nothing: not part of the network's identity.
    USES_NUM_REGIONS = False

    def __init__(self, channels: int, num_segments: int, num_regions: int):
        super().__init__()

    def forward(self, features: torch.Tensor, clip: torch.Tensor | None = None) -> None:
        return None
