"""Fusion matrices M of the EAB (Table 9): identity, channel shuffle, static and dynamic (ESP-Net)."""

from ean.models.fusion import dynamic, identity, shuffle, static  # noqa: F401  (register the variants)
from ean.models.fusion.base import Fusion, apply_matrix

__all__ = ["Fusion", "apply_matrix"]
