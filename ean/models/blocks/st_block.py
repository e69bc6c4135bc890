"""The spatial-temporal block shared by the S-, L-, Incep-Block and the EAB (Fig. 3 and Fig. 8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ean.models.blocks.stages import Branch, BranchStage
from ean.models.fusion.base import Fusion
from ean.models.pointwise import GroupedPointwise

POOLS = ("max", "avg", "none")


def pool3d(x: torch.Tensor, num_segments: int, kind: str) -> torch.Tensor:
    """3x3x3 max or average pooling (stride 1, padding 1) over (time, height, width).

    Runs in the channels-last-3d layout, where the CPU kernels are faster than on NCDHW (figures:
    benchmarks/RESULTS.md, section "Model training step").

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W).
    """
    nt, c, h, w = x.shape
    clips = x.view(nt // num_segments, num_segments, c, h, w).transpose(1, 2)
    clips = clips.contiguous(memory_format=torch.channels_last_3d)
    pool = F.max_pool3d if kind == "max" else F.avg_pool3d
    return pool(clips, 3, stride=1, padding=1).transpose(1, 2).reshape(nt, c, h, w)


class PoolBranch(nn.Module):
    """3x3x3 max (or average) pooling, stride 1, then a 1x1 conv. (N*T, C, H, W) -> (N*T, C, H, W)."""

    def __init__(self, channels: int, num_segments: int, kind: str):
        super().__init__()
        self.num_segments, self.kind = num_segments, kind
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(pool3d(x, self.num_segments, self.kind))


class SpatialTemporalBlock(nn.Module):
    """Residual bottleneck block: temporal branches, fusion M, spatial branches, pooling branch.

    Dataflow (C' = C / reduction)::

        x -> compress 1x1 (groups 4) -> z
        z -> temporal branches -> concat -> BN -> [ReLU] -> fusion M(z) -> spatial branches -> concat --+
        z -> [3x3x3 max/avg pool -> 1x1] ------------------------------------------------------------> (+)
        x + expand 1x1 (groups 4, weight x 0.01 at init)(sum)

    Args:
        channels: C.
        num_segments: T.
        temporal: (kernel, dilation) of each temporal branch.
        spatial: (kernel, dilation) of each spatial branch.
        fusion: the fusion module applied between the two stages.
        pool: ``"max"``, ``"avg"`` or ``"none"`` (the pooling branch).
        inter_relu: ReLU between the temporal and the spatial stage.
        factorized: spatial kernels as k x 1 then 1 x k ((1+1+1)D).
        reduction: C / C'.
        groups: groups of the compress and expand convs.
        expand_init_scale: factor on the expand conv's default initialisation (small: starts near identity).

    Works in the channels-last layout, the backbone's after its first temporal conv: on CPU, oneDNN's grouped
    1x1 convolutions, the temporal (k, 1) convolutions and the 3x3x3 pooling all run there without copies
    (figures: benchmarks/RESULTS.md, section "Model training step"); an NCHW input is converted once.

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W), channels-last.
    """

    def __init__(
        self,
        channels: int,
        num_segments: int,
        temporal: list[Branch],
        spatial: list[Branch],
        fusion: Fusion,
        pool: str = "max",
        inter_relu: bool = True,
        factorized: bool = False,
        reduction: int = 4,
        groups: int = 4,
        expand_init_scale: float = 0.01,
    ):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}; got {pool!r}")
        hidden = channels // reduction
        if hidden % groups or channels % groups:
            raise ValueError(f"channels {channels} and channels/{reduction} must be divisible by groups={groups}")
        self.compress = GroupedPointwise(channels, hidden, groups)
        self.temporal = BranchStage(hidden, num_segments, temporal, "temporal")
        self.temporal_bn = nn.BatchNorm2d(hidden)
        self.inter_relu = nn.ReLU(inplace=True) if inter_relu else nn.Identity()
        self.fusion = fusion
        self.spatial = BranchStage(hidden, num_segments, spatial, "spatial", factorized=factorized)
        self.pool = PoolBranch(hidden, num_segments, pool) if pool != "none" else None
        self.expand = GroupedPointwise(hidden, channels, groups)
        with torch.no_grad():
            self.expand.weight.mul_(expand_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # the backbone's layout after its first temporal conv
        z = self.compress(x)
        y = self.inter_relu(self.temporal_bn(self.temporal(z)))
        y = self.spatial(self.fusion(y, z))
        if self.pool is not None:
            y = y + self.pool(z)
        return self.expand(y).add_(x)  # in place: no new tensor of the block's full size
