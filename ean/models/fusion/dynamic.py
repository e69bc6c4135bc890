"""Dynamic fusion: the Event Scale Perceiving Network (ESP-Net) predicts M for every video."""

from __future__ import annotations

import torch
from torch import nn

from ean.models.fusion.base import Fusion
from ean.models.registries import FUSIONS


def conv_unit(
    in_channels: int, out_channels: int, stride: int = 1, kernel: int = 3, norm: bool = True
) -> nn.Sequential:
    """Conv3d + BN (or a bias) + ReLU; (N, C_in, T, H, W) -> (N, C_out, T/stride, H/stride, W/stride)."""
    conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=not norm)
    layers = [conv, nn.BatchNorm3d(out_channels)] if norm else [conv]
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


class ESPNet(nn.Module):
    """Perceives the scale of objects and events: a small 3D CNN with a large receptive field.

    Dataflow: 1x1x1 C -> p; two 3x3x3 at p; 3x3x3 stride 2 -> 2p; two 3x3x3 at 2p; 3x3x3 stride 2 -> 4p;
    global average pool; Linear 4p -> C*C. ``p = max(C // 16, 2)``: the authors' one-channel ESP-Net of the
    first EAB (C = 16) has a BatchNorm whose weight gets no gradient (a one-channel conv-BN path is
    scale-invariant), so the width is at least 2 (+2.5k parameters, 0.0001 GMACs).

    Args:
        channels: C, the compressed channels of the EAB.

    Shapes: (N, C, T, H, W) -> (N, C, C).
    """

    def __init__(self, channels: int):
        super().__init__()
        p = max(channels // 16, 2)
        self.channels = channels
        self.features = nn.Sequential(
            conv_unit(channels, p, kernel=1),
            conv_unit(p, p),
            conv_unit(p, p),
            conv_unit(p, 2 * p, stride=2),
            conv_unit(2 * p, 2 * p),
            conv_unit(2 * p, 2 * p),
            conv_unit(2 * p, 4 * p, stride=2, norm=False),  # may be 1 x 1 x 1: no batch statistics there
        )
        self.fc = nn.Linear(4 * p, channels * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3, 4))
        return self.fc(pooled).view(-1, self.channels, self.channels)


@FUSIONS.register("dynamic")
class DynamicFusion(Fusion):
    """M = I + ESP-Net(context) per video (or ESP-Net(context) alone with ``identity_init=False``).

    With ``identity_init`` the ESP-Net's last layer starts small, so a new EAB starts as the Incep-Block
    and learns how far to depart from it; without it M is the ESP-Net's raw output, as in the paper.

    Args:
        channels: C.
        num_segments: T.
        identity_init: add the identity to the predicted matrix.

    Shapes: x, context (N*T, C, H, W) -> (N*T, C, H, W); ``matrix`` -> (N, C, C).
    """

    def __init__(self, channels: int, num_segments: int, identity_init: bool = True):
        super().__init__(channels, num_segments)
        self.esp = ESPNet(channels)
        self.identity_init = identity_init
        if identity_init:
            nn.init.normal_(self.esp.fc.weight, std=1e-3)
            nn.init.zeros_(self.esp.fc.bias)
            self.register_buffer("eye", torch.eye(channels), persistent=False)

    def matrix(self, context: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = context.shape
        clips = context.view(nt // self.num_segments, self.num_segments, c, h, w).transpose(1, 2)
        m = self.esp(clips)
        return m + self.eye if self.identity_init else m
