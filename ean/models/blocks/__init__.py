"""Spatial-temporal blocks (Table 8, Table 10): none, s_block, l_block, incep_block, eab."""

from ean.models.blocks import eab, incep_block, l_block, none, s_block  # noqa: F401  (register the variants)
from ean.models.blocks.st_block import SpatialTemporalBlock

__all__ = ["SpatialTemporalBlock"]
