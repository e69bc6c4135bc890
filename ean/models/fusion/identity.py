"""Identity fusion: M = I, the EAB becomes the Incep-Block (Table 9, first row)."""

from __future__ import annotations

import torch

from ean.models.fusion.base import Fusion
from ean.models.registries import FUSIONS


@FUSIONS.register("identity")
class IdentityFusion(Fusion):
    """Passes the temporal branches to the spatial ones unchanged. (N*T, C, H, W) -> same."""

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return x
