"""S-Block: single-scale (2+1)D, kernel 3 x 3 x 3 on three channel groups (receptive field 3 x 3 x 3)."""

from ean.models.blocks.st_block import SpatialTemporalBlock
from ean.models.fusion.identity import IdentityFusion
from ean.models.registries import BLOCKS


@BLOCKS.register("s_block")
def s_block(channels: int, num_segments: int, pool: str = "max", inter_relu: bool = True) -> SpatialTemporalBlock:
    """Three groups, each a temporal 3 then a spatial 3 x 3 conv. Shapes: (N*T, C, H, W) -> same."""
    same = [(3, 1)] * 3
    fusion = IdentityFusion(channels // 4, num_segments)
    return SpatialTemporalBlock(channels, num_segments, same, same, fusion, pool=pool, inter_relu=inter_relu)
