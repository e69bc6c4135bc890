"""Channel-shuffle fusion (ShuffleNet): a fixed permutation that interleaves the branch groups."""

from __future__ import annotations

import torch

from ean.models.fusion.base import Fusion
from ean.models.registries import FUSIONS


def split_sizes(channels: int, parts: int = 3) -> list[int]:
    """Sizes of the EAB's channel split: ``parts - 1`` equal groups of ``channels // parts``, the rest last."""
    size = channels // parts
    return [size] * (parts - 1) + [channels - size * (parts - 1)]


def shuffle_permutation(sizes: list[int]) -> torch.Tensor:
    """Interleaves groups: output channel order takes channel 0 of every group, then channel 1, ...

    Works for unequal group sizes (a group that runs out is skipped).
    """
    starts = [sum(sizes[:g]) for g in range(len(sizes))]
    keys = [(local, g) for g, size in enumerate(sizes) for local in range(size)]
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    return torch.tensor([starts[keys[i][1]] + keys[i][0] for i in order])


@FUSIONS.register("shuffle")
class ShuffleFusion(Fusion):
    """Channel shuffle across the three branch groups. (N*T, C, H, W) -> (N*T, C, H, W)."""

    def __init__(self, channels: int, num_segments: int, groups: int = 3):
        super().__init__(channels, num_segments)
        self.register_buffer("permutation", shuffle_permutation(split_sizes(channels, groups)), persistent=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.permutation)
