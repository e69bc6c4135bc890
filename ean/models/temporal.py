"""Temporal convolutions on TSN-layout features ``(N*T, C, H, W)`` without permuting to ``(N, C, T, H, W)``.

A temporal convolution of kernel k: ``y[t] = sum_j W_j x[t + (j - k//2) * dilation]`` (zero outside the
clip). Both modules view the features as (N, C, T, H*W) and run a (k, 1) 2D convolution in the
channels-last layout, which on CPU is faster than a Conv3d of kernel (k, 1, 1) or shifted multiply-adds
(figures: benchmarks/RESULTS.md, section "Model training step"), and counts exactly the same
multiply-accumulates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TemporalConv(nn.Module):
    """A (grouped) temporal convolution of kernel (k, 1, 1) on (N*T, C, H, W) features.

    Runs as a (k, 1) conv over (time, positions) in the channels-last layout, the fastest form on CPU.

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
        self.num_segments = num_segments
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            (kernel_size, 1),
            padding=(dilation * (kernel_size // 2), 0),
            dilation=(dilation, 1),
            groups=groups,
            bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        t = self.num_segments
        clips = x.view(nt // t, t, c, h * w).transpose(1, 2).contiguous(memory_format=torch.channels_last)
        return self.conv(clips).transpose(1, 2).reshape(nt, -1, h, w)


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
        # A depthwise (3, 1) conv over (time, positions), in the channels-last layout where the CPU kernel
        # is faster than shifted multiply-adds (module docstring): y[t] = w0 x[t-1] + w1 x[t] + w2 x[t+1].
        nt, c, h, w = x.shape
        t = self.num_segments
        clips = x.view(nt // t, t, c, h * w).transpose(1, 2).contiguous(memory_format=torch.channels_last)
        out = F.conv2d(clips, self.weight.view(c, 1, 3, 1), padding=(1, 0), groups=c)
        return out.transpose(1, 2).reshape(nt, c, h, w)


class TemporalShift(nn.Module):
    """TSM's temporal shift (Lin et al., "TSM: Temporal Shift Module"): fixed, no parameters, no multiply-adds.

    Of the C channels of each frame, the first ``fold = int(C * shift_fraction)`` take the next frame's values
    (shifted backward in time), the next ``fold`` take the previous frame's (shifted forward in time), and the
    rest pass through; a frame beyond the clip's ends reads zeros. It computes what
    ``DepthwiseTemporalConv`` computes at initialisation, but never learns.

    Args:
        channels: C.
        num_segments: T, the number of frames per clip.
        shift_fraction: the fraction of channels shifted each way (TSM: 1/8).

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W).
    """

    def __init__(self, channels: int, num_segments: int, shift_fraction: float = 1 / 8):
        super().__init__()
        if not 0 <= 2 * shift_fraction <= 1:
            raise ValueError(f"shift_fraction must be in [0, 1/2], got {shift_fraction}")
        self.channels = channels
        self.num_segments = num_segments
        self.fold = int(channels * shift_fraction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N*T, C, H, W) -> (N*T, C, H, W): y[t, :fold] = x[t + 1], y[t, fold:2 fold] = x[t - 1], rest x[t]."""
        nt, c, h, w = x.shape
        t, fold = self.num_segments, self.fold
        clips = x.view(nt // t, t, c, h, w)
        out = torch.zeros_like(clips)
        out[:, :-1, :fold] = clips[:, 1:, :fold]  # y[t] = x[t + 1]
        out[:, 1:, fold : 2 * fold] = clips[:, :-1, fold : 2 * fold]  # y[t] = x[t - 1]
        out[:, :, 2 * fold :] = clips[:, :, 2 * fold :]
        return out.view(nt, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, num_segments={self.num_segments}, fold={self.fold}"
