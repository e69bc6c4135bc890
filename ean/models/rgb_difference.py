"""RGB difference (``modality: rgb_diff``): the low-level motion cue the LMC encodes, taken as it is.

The paper builds its LMC on RGB difference maps (Sec. 3.3, "Calculating RGB difference maps") and turns them
into a latent motion code; TSN's RGB-difference stream feeds the stacked differences to a convolutional stem.
This variant does the latter, so that "EAN with the LMC" can be set against "EAN with plain RGB differences"
at the same input (5 frames a segment) and the same insertion point (added to the stem's output).
"""

from __future__ import annotations

import torch
from torch import nn

from ean.models.registries import MOTIONS


@MOTIONS.register("diff")
class RGBDifference(nn.Module):
    """Stacks the K = L - 1 differences of consecutive frames as channels and maps them to the stem's grid.

    Dataflow::

        frames (M, L, 3, H, W) -> K differences stacked: (M, 3K, H, W)
        -> 7x7 conv, stride 2 -> BN -> ReLU -> 3x3 max pool, stride 2   (a ResNet stem: H/4 x W/4)
        -> 1x1 conv to out_channels (zero at initialisation: the network starts as its RGB-only self)

    Args:
        frames_per_segment: L (at least 2).
        out_channels: channels of the motion map (the stem's 64).
        hidden: channels of the difference stem.
        zero_init: start the last convolution at zero (no motion added until it learns some).

    Shapes: (M, L, 3, H, W) with M = N*T -> (M, out_channels, H/4, W/4), the size ResNet's stem gives H, W.
    """

    #: The frames of each segment it reads (as the LMC: 4 differences).
    FRAMES_PER_SEGMENT = 5

    def __init__(self, frames_per_segment: int = 5, out_channels: int = 64, hidden: int = 64, zero_init: bool = True):
        super().__init__()
        if frames_per_segment < 2:
            raise ValueError(f"RGB difference needs >= 2 frames per segment, got {frames_per_segment}")
        diffs = frames_per_segment - 1
        self.stem = nn.Sequential(
            nn.Conv2d(3 * diffs, hidden, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.project = nn.Conv2d(hidden, out_channels, 1, bias=False)
        if zero_init:
            nn.init.zeros_(self.project.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diffs = x[:, 1:] - x[:, :-1]  # (M, K, 3, H, W)
        return self.project(self.stem(diffs.flatten(1, 2)))
