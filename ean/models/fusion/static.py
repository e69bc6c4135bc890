"""Static fusion: one learned matrix M shared by every video (fixed at inference)."""

from __future__ import annotations

import torch
from torch import nn

from ean.models.fusion.base import Fusion
from ean.models.registries import FUSIONS


@FUSIONS.register("static")
class StaticFusion(Fusion):
    """A learned (C, C) matrix, initialised to the identity. (N*T, C, H, W) -> (N*T, C, H, W)."""

    def __init__(self, channels: int, num_segments: int):
        super().__init__(channels, num_segments)
        self.weight = nn.Parameter(torch.eye(channels))

    def matrix(self, context: torch.Tensor) -> torch.Tensor:
        clips = context.shape[0] // self.num_segments
        return self.weight.unsqueeze(0).expand(clips, -1, -1)
