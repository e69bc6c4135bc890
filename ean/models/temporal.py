"""Temporal convolutions on TSN-layout features ``(N*T, C, H, W)`` without permuting to ``(N, C, T, H, W)``.

A temporal convolution of kernel k is a sum over taps of channel mixes of time-shifted inputs:
``y[t] = sum_j W_j x[t + (j - k//2) * dilation]`` (zero outside the clip). ``TemporalConv`` computes all
taps with one 1x1 convolution producing ``k * C_out`` channels (a single GEMM, the fast path on CPU and GPU)
and adds the time-shifted chunks; ``DepthwiseTemporalConv`` does the same per channel with broadcasts.
Both count exactly the multiply-accumulates of the equivalent ``Conv3d`` of kernel (k, 1, 1).
"""

from __future__ import annotations

import torch
from torch import nn


def shift_add(out: torch.Tensor, x: torch.Tensor, offset: int) -> None:
    """Adds ``x[:, t + offset]`` to ``out[:, t]`` in place, zero beyond the clip's ends.

    Args:
        out: (N, T, ...) accumulator.
        x: (N, T, ...) tensor of the same shape.
        offset: time offset; 0 adds x as it is.
    """
    steps = x.shape[1]
    if offset == 0:
        out += x
    elif offset > 0 and offset < steps:
        out[:, : steps - offset] += x[:, offset:]
    elif offset < 0 and -offset < steps:
        out[:, -offset:] += x[:, : steps + offset]


class TemporalConv(nn.Module):
    """A (grouped) temporal convolution of kernel (k, 1, 1) on (N*T, C, H, W) features.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        num_segments: T, the number of frames per clip.
        kernel_size: k, odd.
        dilation: spacing of the taps in time.
        groups: channel groups, as in ``nn.Conv3d``.
        bias: whether to add a bias.

    Shapes: (N*T, C_in, H, W) -> (N*T, C_out, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_segments: int,
        kernel_size: int = 3,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"temporal kernel_size must be odd, got {kernel_size}")
        self.num_segments, self.kernel_size, self.dilation = num_segments, kernel_size, dilation
        self.out_channels, self.groups = out_channels, groups
        self.taps = nn.Conv2d(in_channels, out_channels * kernel_size, 1, groups=groups, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, _, h, w = x.shape
        t = self.num_segments
        taps = self.taps(x)
        k, g, c = self.kernel_size, self.groups, self.out_channels
        # Output channels of a grouped 1x1 conv are laid out group by group: (g, k, C_out/g).
        taps = taps.view(nt // t, t, g, k, c // g, h, w)
        out = taps[:, :, :, k // 2].clone()
        for j in range(k):
            if j != k // 2:
                shift_add(out, taps[:, :, :, j], (j - k // 2) * self.dilation)
        out = out.view(nt, c, h, w)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


class DepthwiseTemporalConv(nn.Module):
    """Depthwise temporal convolution of kernel 3, initialised as a temporal shift (TSM).

    At initialisation 1/8 of the channels take the previous frame, 1/8 the next one and the rest pass
    through: the backbone starts as TSM and learns its temporal kernel from there.

    Args:
        channels: C.
        num_segments: T.
        shift_fraction: the fraction of channels shifted each way at initialisation.

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W).
    """

    def __init__(self, channels: int, num_segments: int, shift_fraction: float = 1 / 8):
        super().__init__()
        self.num_segments = num_segments
        weight = torch.zeros(channels, 3)
        fold = int(channels * shift_fraction)
        weight[:fold, 2] = 1.0  # y[t] = x[t + 1]
        weight[fold : 2 * fold, 0] = 1.0  # y[t] = x[t - 1]
        weight[2 * fold :, 1] = 1.0
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        clip = x.view(nt // self.num_segments, self.num_segments, c, h, w)
        wt = self.weight.t().reshape(3, 1, 1, c, 1, 1)
        out = clip * wt[1]
        shift_add(out, clip * wt[0], -1)
        shift_add(out, clip * wt[2], 1)
        return out.view(nt, c, h, w)
