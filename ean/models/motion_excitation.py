"""Motion excitation (ME, from TEA): channel attention from feature differences of adjacent frames."""

from __future__ import annotations

import torch
from torch import nn


class MotionExcitation(nn.Module):
    """Re-weights channels by how much they change between frames.

    Dataflow: squeeze C -> C/r (1x1, BN); the next frame's squeezed features go through a depthwise 3x3
    conv and the current frame's are subtracted (the last frame gets zeros); global average pool; 1x1
    conv C/r -> C, BN; ``y = sigmoid(.) - 0.5``; output ``x + x * y``.

    Args:
        channels: C.
        num_segments: T.
        reduction: r.

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W).
    """

    def __init__(self, channels: int, num_segments: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.num_segments = num_segments
        self.squeeze = nn.Conv2d(channels, hidden, 1, bias=False)
        self.squeeze_bn = nn.BatchNorm2d(hidden)
        self.neighbour = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, _, h, w = x.shape
        t = self.num_segments
        s = self.squeeze_bn(self.squeeze(x))
        nxt = self.neighbour(s).view(nt // t, t, -1, h, w)
        cur = s.view(nt // t, t, -1, h, w)
        diff = torch.zeros_like(cur)
        diff[:, :-1] = nxt[:, 1:] - cur[:, :-1]
        pooled = diff.mean(dim=(3, 4)).view(nt, -1, 1, 1)
        y = torch.sigmoid(self.expand_bn(self.expand(pooled))) + 0.5  # 1 + (sigmoid - 0.5)
        return x * y  # x + x * (sigmoid - 0.5), in one pass over x
