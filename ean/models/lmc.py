"""Latent Motion Code (LMC, Sec. 3.3, Fig. 5c): short-term motion of a 5-frame segment in a latent space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ean.models.registries import MOTIONS


class LatentResidualUnit(nn.Module):
    """``x + ReLU(BN(grouped 3x3x3 conv(x)))`` over (differences, h, w). (M, D, K, h, w) -> same."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, 3, padding=1, groups=groups, bias=False)
        self.bn = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.bn(self.conv(x)))


@MOTIONS.register("lmc")
class LatentMotionCode(nn.Module):
    """Turns each segment's frame differences into a motion feature map added to the stem's output.

    Dataflow (L frames per segment, K = L - 1 differences)::

        frames -> 2x average downsample -> K differences of consecutive frames
        -> P x P patches (3*P*P values) -> encoder Linear -> latent D            (M, D, K, H/32, W/32)
        -> residual grouped 3x3x3 conv units over (K, h, w)                     (high-order motion)
        -> decoder Linear D -> c*8*8 per position (weight x 0.01 at init) -> pixel layout
        -> K * c = 64 channels at H/4 x W/4, the stem's output size

    Args:
        frames_per_segment: L.
        out_channels: channels of the motion map (the stem's 64); split evenly over the K differences.
        latent: D (the paper says 128; 256 reproduces the reported ~1.1 GFLOPs).
        patch: patch size P at the downsampled resolution (16 = 32 pixels of the input).
        downsample: spatial downsampling of the frames before differencing (2, the default, reproduces the
            paper's Params/FLOPs; the paper's text describes full resolution: ``downsample=1, patch=32,
            latent=128``). ``patch * downsample`` must be a multiple of 4 (the decoded patch at H/4).
        groups: groups of the 3D convs.
        units: number of residual units.
        decoder_scale: factor on the decoder's initial weights (small: starts near 'no motion').

    Shapes: (M, L, 3, H, W) with M = N*T -> (M, out_channels, H/4, W/4).
    """

    #: The frames of each segment the LMC reads (the paper's 5: 4 differences).
    FRAMES_PER_SEGMENT = 5

    @staticmethod
    def input_multiple(patch: int, downsample: int, **_: object) -> int:
        """The LMC cuts frames into patches of ``patch * downsample`` pixels: crops must be multiples of it
        (called with every constructor option, defaults filled in)."""
        return int(patch) * int(downsample)

    def __init__(
        self,
        frames_per_segment: int = 5,
        out_channels: int = 64,
        latent: int = 256,
        patch: int = 16,
        downsample: int = 2,
        groups: int = 16,
        units: int = 2,
        decoder_scale: float = 0.01,
    ):
        super().__init__()
        diffs = frames_per_segment - 1
        if diffs < 1 or out_channels % diffs:
            raise ValueError(f"LMC needs >= 2 frames per segment with {out_channels} divisible by the differences")
        if patch * downsample % 4:
            raise ValueError(
                f"LMC: patch * downsample = {patch * downsample} must be a multiple of 4 (got patch "
                f"{patch}, downsample {downsample})"
            )
        self.patch, self.downsample = patch, downsample
        self.per_diff = out_channels // diffs
        self.up = patch * downsample // 4  # decoded patch size at the stem's resolution
        self.encoder = nn.Linear(3 * patch * patch, latent)
        self.units = nn.Sequential(*[LatentResidualUnit(latent, groups) for _ in range(units)])
        self.decoder = nn.Linear(latent, self.per_diff * self.up * self.up)
        with torch.no_grad():
            self.decoder.weight.mul_(decoder_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, length, _, height, width = x.shape
        frames = F.avg_pool2d(x.flatten(0, 1), self.downsample) if self.downsample > 1 else x.flatten(0, 1)
        frames = frames.view(m, length, 3, *frames.shape[-2:])
        diffs = frames[:, 1:] - frames[:, :-1]  # (M, K, 3, H2, W2)
        k, p = length - 1, self.patch
        h, w = diffs.shape[-2] // p, diffs.shape[-1] // p
        patches = diffs.reshape(m, k, 3, h, p, w, p).permute(0, 1, 3, 5, 2, 4, 6).reshape(m, k, h, w, 3 * p * p)
        latent = self.encoder(patches).permute(0, 4, 1, 2, 3)  # (M, D, K, h, w)
        code = self.units(latent).permute(0, 2, 3, 4, 1)  # (M, K, h, w, D)
        u = self.up
        motion = self.decoder(code).view(m, k, h, w, self.per_diff, u, u)
        return motion.permute(0, 1, 4, 2, 5, 3, 6).reshape(m, k * self.per_diff, h * u, w * u)
