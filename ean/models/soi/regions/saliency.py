"""The learned Saliency-Net: R object saliency maps per frame (the EAN's own regions)."""

from __future__ import annotations

import torch
from torch import nn

from ean.models.registries import REGIONS


def _unit(in_channels: int, out_channels: int, kernel: tuple[int, int, int]) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel, padding=padding), nn.ReLU(True), nn.BatchNorm3d(out_channels)
    )


@REGIONS.register("saliency")
class SaliencyRegions(nn.Module):
    """Saliency-Net: 1x1x1 D -> D/4; 3x3x3; 1x3x3; 1x3x3 -> R maps; softmax over each frame's positions.

    Args:
        channels: C of the stage (the SOI-Tr works on D = C/4; the Net's width is D/4).
        num_segments: T.
        num_regions: R, objects per frame.

    Shapes: features (N, D, T, H, W) -> weights (N, T, R, H, W), each map summing to 1.
    """

    def __init__(self, channels: int, num_segments: int, num_regions: int = 4):
        super().__init__()
        dim = channels // 4
        hidden = max(dim // 4, 1)
        self.net = nn.Sequential(
            _unit(dim, hidden, (1, 1, 1)),
            _unit(hidden, hidden, (3, 3, 3)),
            _unit(hidden, hidden, (1, 3, 3)),
            nn.Conv3d(hidden, num_regions, (1, 3, 3), padding=(0, 1, 1)),
        )

    def forward(self, features: torch.Tensor, clip: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.net(features).transpose(1, 2)  # (N, T, R, H, W)
        return logits.flatten(3).softmax(dim=-1).view_as(logits)
