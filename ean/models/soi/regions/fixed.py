"""Fixed regions: the same R boxes (a grid over the frame) for every video (Table 7, 'Fixed')."""

from __future__ import annotations

import math

import torch
from torch import nn

from ean.models.registries import REGIONS
from ean.models.soi.regions.masks import box_masks


def grid_boxes(num_regions: int, size: tuple[int, int]) -> torch.Tensor:
    """R boxes tiling a frame of ``size`` (H, W) as a rows x cols grid, rows * cols = R, rows <= cols."""
    rows = max(r for r in range(1, math.isqrt(num_regions) + 1) if num_regions % r == 0)
    cols = num_regions // rows
    height, width = size
    boxes = [
        [c * width / cols, r * height / rows, (c + 1) * width / cols, (r + 1) * height / rows]
        for r in range(rows)
        for c in range(cols)
    ]
    return torch.tensor(boxes)


@REGIONS.register("fixed")
class FixedRegions(nn.Module):
    """R fixed boxes on a grid; weights uniform inside each box.

    Shapes: features (N, D, T, H, W), clip ignored -> weights (N, T, R, H, W).
    """

    def __init__(self, channels: int, num_segments: int, num_regions: int):
        super().__init__()
        self.num_regions = num_regions

    def forward(self, features: torch.Tensor, clip: torch.Tensor | None = None) -> torch.Tensor:
        n, _, t, h, w = features.shape
        masks = box_masks(grid_boxes(self.num_regions, (h, w)).to(features.device), (h, w), (h, w))
        return masks.expand(n, t, -1, -1, -1)
