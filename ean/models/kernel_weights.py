"""The EAB's kernel weights (the paper's Fig. 10): how much each fixed-size kernel is used for a video.

For an EAB with a fusion matrix M (C' x C', mapping the temporal branches' channels to the spatial
branches' channels), the weight of a temporal kernel is the sum of the M entries in the columns of its
channel group, and the weight of a spatial kernel the sum of the entries in the rows of its group. The
paper compares an anchor video with its spatially zoomed and temporally resampled versions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ean.models.blocks.st_block import SpatialTemporalBlock
from ean.models.fusion.base import Fusion
from ean.models.fusion.shuffle import split_sizes


def _group_sums(matrix: torch.Tensor, sizes: list[int], dim: int) -> torch.Tensor:
    """(N, C, C) -> (N, groups): the entries summed over each channel group along ``dim`` and the other axis."""
    return torch.stack([part.sum(dim=(1, 2)) for part in torch.split(matrix, sizes, dim=dim)], dim=1)


@torch.no_grad()
def kernel_weights(model: nn.Module, clip: torch.Tensor, stage: int = 4) -> dict[str, torch.Tensor]:
    """Kernel weights of the EAB after ``stage`` for a batch of clips.

    Args:
        model: an ``EAN`` whose block after ``stage`` has a matrix fusion (``dynamic`` or ``static``).
        clip: (N, T, L, 3, H, W) clips as the model takes them.
        stage: the stage (1-5) whose EAB to read.

    Returns:
        ``{"spatial": (N, 3), "temporal": (N, 3)}``: weights of kernels 1, 3, 5 (dilated 3) in each axis.
    """
    block = model.blocks[str(stage)]
    if not isinstance(block, SpatialTemporalBlock) or type(block.fusion).matrix is Fusion.matrix:
        raise ValueError(f"the block after stage {stage} has no fusion matrix (use an EAB with dynamic/static M)")
    captured = {}
    hook = block.compress.register_forward_hook(lambda module, args, out: captured.setdefault("z", out))
    try:
        model.eval()(clip)
    finally:
        hook.remove()
    matrix = block.fusion.matrix(captured["z"]).float()  # (N, C', C'): rows spatial, columns temporal
    sizes = split_sizes(matrix.shape[-1])
    return {"spatial": _group_sums(matrix, sizes, dim=1), "temporal": _group_sums(matrix, sizes, dim=2)}


def zoomed(clip: torch.Tensor, factor: float = 1.6) -> torch.Tensor:
    """The clip spatially zoomed in by ``factor`` about its centre (same size). (N, T, L, 3, H, W) -> same."""
    n, t, length, c, h, w = clip.shape
    frames = clip.reshape(-1, c, h, w)
    ch, cw = round(h / factor), round(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = frames[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False).view_as(clip)


def faster_frame_rate(clip: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """The clip resampled at ``factor`` x the frame rate: the central 1/factor of its time span over T frames.

    From an already sampled clip this repeats frames (nearest neighbour in time); sampling the video
    itself at the higher rate gives new frames. (N, T, L, 3, H, W) -> same.
    """
    t = clip.shape[1]
    start = (t - t / factor) / 2
    index = (start + torch.arange(t) / factor).floor().long().clamp(0, t - 1)
    return clip[:, index]


def kernel_weight_variants(model: nn.Module, clip: torch.Tensor, stage: int = 4) -> dict[str, dict[str, list]]:
    """Fig. 10's three videos: anchor, zoomed 1.6x, 2x frame rate -> {"spatial": [3], "temporal": [3]} each.

    The output feeds ``reports.figures.plot_kernel_weights``. ``clip``: one clip (1, T, L, 3, H, W).
    """
    variants = {"anchor": clip, "zoom_1.6x": zoomed(clip), "fps_2x": faster_frame_rate(clip)}
    out = {}
    for name, video in variants.items():
        weights = kernel_weights(model, video, stage)
        out[name] = {axis: weights[axis][0].tolist() for axis in ("spatial", "temporal")}
    return out
