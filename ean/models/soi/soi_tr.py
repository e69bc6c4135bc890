"""Sparse Object Interaction Transformer (SOI-Tr, Sec. 3.2, Fig. 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ean.models.soi.transformer import Transformer


class SOITransformer(nn.Module):
    """Pools object tokens from a feature map, models their interactions, adds the result back.

    Dataflow::

        x (N*T, C, H, W) -> squeeze 1x1 C -> D=C/4, BN, ReLU -> + positional embedding E -> X'
        regions(X', clip) -> weights O (N, T, R, H, W)          [None: every position is a token]
        tokens F = sum_hw X' * O  (N, T*R, D) -> Transformer -> mean over tokens -> Linear D -> C
        -> per-channel scale and shift (zero at init) -> delta (N, C)
        x + delta, broadcast over T, H, W  (after the final stage: the global average + delta)

    The authors' code ends with a BatchNorm1d over (clips, C), initialised to zero, which fails in training
    with one clip per device. Here the same two per-channel parameters form a plain affine map, zero at
    init: a new SOI-Tr is the identity, and any batch size trains. The optimizer treats them as the
    BatchNorm's scale and shift they stand for (``NORM_PARAMETERS``: no weight decay).

    Args:
        channels: C.
        num_segments: T.
        feature_size: H = W of the feature map at the training input size (the positional embedding's
            size; other sizes interpolate it).
        regions: the region strategy (a ``REGIONS`` module); weights None mean every position is a token.
        depth, heads, head_dim, mlp_hidden: the Transformer's shape.

    Shapes: x (N*T, C, H, W), clip (N*T, 3, Hin, Win) -> (N*T, C, H, W).
    """

    #: Parameters trained as a normalisation layer's scale and shift (``ean.train.optim.parameter_groups``).
    NORM_PARAMETERS = ("out_scale", "out_shift")

    def __init__(
        self,
        channels: int,
        num_segments: int,
        feature_size: int,
        regions: nn.Module,
        depth: int = 2,
        heads: int = 8,
        head_dim: int = 64,
        mlp_hidden: int = 512,
    ):
        super().__init__()
        dim = channels // 4
        self.num_segments = num_segments
        self.squeeze = nn.Sequential(nn.Conv2d(channels, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(True))
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, num_segments, feature_size, feature_size))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.regions = regions
        self.transformer = Transformer(dim, depth, heads, head_dim, mlp_hidden)
        self.out = nn.Linear(dim, channels, bias=False)
        self.out_scale = nn.Parameter(torch.zeros(channels))
        self.out_shift = nn.Parameter(torch.zeros(channels))

    def _embedded(self, x: torch.Tensor) -> torch.Tensor:
        nt, _, h, w = x.shape
        t = self.num_segments
        feats = self.squeeze(x)
        feats = feats.view(nt // t, t, -1, h, w).transpose(1, 2)  # (N, D, T, H, W)
        pos = self.pos_embed
        if pos.shape[-2:] != (h, w):
            pos = F.interpolate(pos, size=(t, h, w), mode="trilinear", align_corners=False)
        return feats + pos

    def tokens(self, x: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        """Object tokens (N, T*R, D) of a feature map (N*T, C, H, W)."""
        feats = self._embedded(x)
        weights = self.regions(feats, clip)  # (N, T, R, H, W)
        if weights is None:
            return feats.flatten(2).transpose(1, 2)  # (N, T*H*W, D)
        tokens = torch.einsum("ndthw,ntrhw->ntrd", feats, weights.to(feats.dtype))
        return tokens.flatten(1, 2)

    def forward(self, x: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        tokens = self.transformer(self.tokens(x, clip))
        delta = self.out(tokens.mean(dim=1)) * self.out_scale + self.out_shift  # (N, C)
        nt, c, _, _ = x.shape
        t = self.num_segments
        return (x.view(nt // t, t, c, *x.shape[2:]) + delta.view(-1, 1, c, 1, 1)).view_as(x)
