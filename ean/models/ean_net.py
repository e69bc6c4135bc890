"""The Event Adaptive Network: a TSN ResNet with blocks and SOI-Trs after chosen stages, and an optional motion
module (the LMC)."""

from __future__ import annotations

import torch
from torch import nn

from ean.models.backbone import ResNet


class EAN(nn.Module):
    """Composes a backbone with parts inserted after its stages (the paper's Fig. 2 and Fig. 5).

    Stage 1 is the stem (Conv1), stages 2-5 are ``layer1`` ... ``layer4``. After stage k come
    ``blocks[k]`` (an EAB or a baseline block) and then ``sois[k]`` (a SOI-Tr); the motion module's map
    (the LMC's) is added to the stem's output. Segment scores are averaged (TSN consensus) before the classifier.

    Args:
        backbone: a ``ResNet``.
        blocks: stage -> block, ``{"1": ..., "4": ...}`` (string keys for ``nn.ModuleDict``).
        sois: stage -> SOI-Tr.
        lmc: the motion module (a ``MOTIONS`` variant: the Latent Motion Code, ...), or None for RGB only;
            its attribute keeps the LMC's name, which the parameters of saved checkpoints carry.
        num_classes: K.
        num_segments: T.
        dropout: dropout before the classifier.
        rgb_frame: index of the frame of each segment that the RGB path sees (when L > 1).

    Shapes: (N, T, L, 3, H, W) -> (N, K) logits. L = 1 for sparse RGB clips, 5 for RGB+LMC (the motion
    module's ``FRAMES_PER_SEGMENT``).
    """

    def __init__(
        self,
        backbone: ResNet,
        blocks: dict[str, nn.Module],
        sois: dict[str, nn.Module],
        lmc: nn.Module | None,
        num_classes: int,
        num_segments: int,
        dropout: float = 0.5,
        rgb_frame: int | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.blocks = nn.ModuleDict(blocks)
        self.sois = nn.ModuleDict(sois)
        self.lmc = lmc
        self.num_segments = num_segments
        self.rgb_frame = rgb_frame
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(backbone.stage_channels[-1], num_classes)
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.zeros_(self.fc.bias)

    def _after(self, stage: int, x: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        key = str(stage)
        if key in self.blocks:
            x = self.blocks[key](x)
        if key in self.sois:
            x = self.sois[key](x, rgb)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, L, 3, H, W) -> (N*T, C5, H/32, W/32), the last stage's feature map."""
        n, t, length = x.shape[:3]
        if t != self.num_segments:
            raise ValueError(f"model built for {self.num_segments} segments got a clip of {t}")
        index = length // 2 if self.rgb_frame is None else self.rgb_frame
        rgb = x[:, :, index].flatten(0, 1)  # (N*T, 3, H, W)
        out = self.backbone.forward_stem(rgb)
        if self.lmc is not None:
            out = out + self.lmc(x.flatten(0, 1))
        out = self._after(1, out, rgb)
        for stage in range(2, 6):
            out = getattr(self.backbone, f"layer{stage - 1}")(out)
            out = self._after(stage, out, rgb)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            x = x.unsqueeze(2)  # (N, T, 3, H, W) -> (N, T, 1, 3, H, W)
        n = x.shape[0]
        feats = self.features(x)
        pooled = feats.mean(dim=(2, 3)).view(n, self.num_segments, -1).mean(dim=1)
        return self.fc(self.dropout(pooled))
