"""L-Block: single-scale (2+1)D with dilation 2 (receptive field 5 x 5 x 5, the S-Block's parameters)."""

from ean.models.blocks.st_block import SpatialTemporalBlock
from ean.models.fusion.identity import IdentityFusion
from ean.models.registries import BLOCKS


@BLOCKS.register("l_block")
def l_block(channels: int, num_segments: int, pool: str = "max", inter_relu: bool = True) -> SpatialTemporalBlock:
    """Three groups, each a temporal 3 (dilation 2) then a spatial 3 x 3 (dilation 2) conv.

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W).
    """
    dilated = [(3, 2)] * 3
    fusion = IdentityFusion(channels // 4, num_segments)
    return SpatialTemporalBlock(channels, num_segments, dilated, dilated, fusion, pool=pool, inter_relu=inter_relu)
