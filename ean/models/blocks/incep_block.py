"""Incep-Block: the EAB with M = I (multi-scale, static architecture)."""

from ean.models.blocks.eab import eab
from ean.models.blocks.st_block import SpatialTemporalBlock
from ean.models.registries import BLOCKS


@BLOCKS.register("incep_block", same_as=("eab", {"fusion": "identity"}))
def incep_block(
    channels: int,
    num_segments: int,
    pool: str = "max",
    inter_relu: bool = True,
    dilation: bool = True,
    factorization: str = "2+1",
) -> SpatialTemporalBlock:
    """Kernels 1, 3, 5 in time and space without a fusion matrix. Shapes: (N*T, C, H, W) -> same."""
    return eab(
        channels,
        num_segments,
        fusion="identity",
        pool=pool,
        inter_relu=inter_relu,
        dilation=dilation,
        factorization=factorization,
    )
