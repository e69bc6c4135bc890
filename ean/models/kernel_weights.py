"""The EAB's kernel weights (the paper's Fig. 10): how much each fixed-size kernel is used for a video.

For an EAB with a fusion matrix M (C' x C', mapping the temporal branches' channels to the spatial
branches' channels), the weight of a temporal kernel is the sum of the M entries in the columns of its
channel group, and the weight of a spatial kernel the sum of the entries in the rows of its group. The
paper compares an anchor video with its spatially zoomed and temporally resampled versions.

Where the fusion adds the identity (``dynamic`` with ``identity_init``: M = I + ESP-Net output),
``minus_identity`` reads the learned part M - I: the identity alone gives every kernel its group size.
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


def has_matrix(block: nn.Module | None) -> bool:
    """Whether a block mixes its branches by a fusion matrix M: a ``SpatialTemporalBlock`` whose fusion
    overrides ``Fusion.matrix`` (``dynamic``, ``static``, or any registered fusion that has one)."""
    return isinstance(block, SpatialTemporalBlock) and type(block.fusion).matrix is not Fusion.matrix


def config_has_matrix(block: str, fusion: str, block_options: dict | None = None, num_segments: int = 8) -> bool:
    """``has_matrix`` of the block a model config names, built on the meta device (no memory, milliseconds);
    False for a name no registry holds or options the block refuses."""
    from ean.models.build import fusion_arguments, resolve_model_config
    from ean.models.registries import BLOCKS

    try:
        cfg = resolve_model_config({"block": block, "fusion": fusion, "block_options": dict(block_options or {})})
        factory = BLOCKS.get(cfg["block"])
        with torch.device("meta"):
            built = factory(
                channels=64, num_segments=num_segments, **fusion_arguments(factory, cfg), **cfg["block_options"]
            )
    except (ValueError, LookupError, TypeError):
        return False
    return has_matrix(built)


def _matrix_block(model: nn.Module, stage: int) -> SpatialTemporalBlock:
    if str(stage) not in model.blocks:
        raise ValueError(f"the model has no block after stage {stage} (blocks after stages {', '.join(model.blocks)})")
    block = model.blocks[str(stage)]
    if not has_matrix(block):
        raise ValueError(f"the block after stage {stage} has no fusion matrix (use an EAB with dynamic/static M)")
    return block


def adds_identity(model: nn.Module, stage: int = 4) -> bool:
    """Whether the fusion of the EAB after ``stage`` adds the identity to what it learns (M = I + ESP-Net
    output: ``dynamic`` with ``identity_init``, the default). A ``static`` M starts at I but is one learned
    matrix, so it does not."""
    return bool(getattr(_matrix_block(model, stage).fusion, "identity_init", False))


@torch.no_grad()
def fusion_matrix(model: nn.Module, clip: torch.Tensor, stage: int = 4, minus_identity: bool = False) -> torch.Tensor:
    """The fusion matrix M of the EAB after ``stage`` for a batch of clips, (N, C', C'): rows spatial branches'
    channels, columns temporal branches'.

    Args:
        model: an ``EAN`` whose block after ``stage`` has a matrix fusion (``dynamic`` or ``static``).
        clip: (N, T, L, 3, H, W) clips as the model takes them.
        stage: the stage (1-5) whose EAB to read.
        minus_identity: return M - I where the fusion adds I (``adds_identity``): the part the ESP-Net
            predicts. Elsewhere M itself.
    """
    block = _matrix_block(model, stage)
    captured = {}
    hook = block.compress.register_forward_hook(lambda module, args, out: captured.setdefault("z", out))
    try:
        model.eval()(clip)
    finally:
        hook.remove()
    matrix = block.fusion.matrix(captured["z"]).float()
    if minus_identity and adds_identity(model, stage):
        matrix = matrix - torch.eye(matrix.shape[-1], device=matrix.device)
    return matrix


def group_weights(matrix: torch.Tensor) -> dict[str, torch.Tensor]:
    """Kernel weights of fusion matrices (N, C', C'): ``{"spatial": (N, 3), "temporal": (N, 3)}``, the sums
    over the rows (spatial) or the columns (temporal) of each kernel's channel group."""
    sizes = split_sizes(matrix.shape[-1])
    return {"spatial": _group_sums(matrix, sizes, dim=1), "temporal": _group_sums(matrix, sizes, dim=2)}


def kernel_weights(
    model: nn.Module, clip: torch.Tensor, stage: int = 4, minus_identity: bool = False
) -> dict[str, torch.Tensor]:
    """Kernel weights of the EAB after ``stage`` for a batch of clips.

    Args:
        model: an ``EAN`` whose block after ``stage`` has a matrix fusion (``dynamic`` or ``static``).
        clip: (N, T, L, 3, H, W) clips as the model takes them.
        stage: the stage (1-5) whose EAB to read.
        minus_identity: the weights of M - I where the fusion adds I (see ``fusion_matrix``); each weight
            is then the raw one less its group's size.

    Returns:
        ``{"spatial": (N, 3), "temporal": (N, 3)}``: weights of kernels 1, 3, 5 (dilated 3) in each axis.
    """
    return group_weights(fusion_matrix(model, clip, stage, minus_identity))


def zoomed(clip: torch.Tensor, factor: float = 1.6) -> torch.Tensor:
    """The clip spatially zoomed in by ``factor`` about its centre (same size). (N, T, L, 3, H, W) -> same."""
    n, t, length, c, h, w = clip.shape
    frames = clip.reshape(-1, c, h, w)
    ch, cw = round(h / factor), round(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = frames[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False).view_as(clip)


def kernel_weight_variants(
    model: nn.Module, clip: torch.Tensor, fast_clip: torch.Tensor, stage: int = 4, minus_identity: bool = False
) -> dict[str, dict[str, list]]:
    """Fig. 10's three videos: anchor, zoomed 1.6x, 2x frame rate -> {"spatial": [3], "temporal": [3]} each.

    The output feeds ``reports.figures.plot_kernel_weights``.

    Args:
        model, stage, minus_identity: as for ``kernel_weights``.
        clip: the anchor clip (1, T, L, 3, H, W).
        fast_clip: the same video sampled again at twice the frame rate (1, T, L, 3, H, W): new frames of the
            video, half the anchor's stride apart (``reports.clips.FrameRateSampler``), not repeated frames.
    """
    if fast_clip.shape != clip.shape:
        raise ValueError(f"fast_clip has shape {tuple(fast_clip.shape)}, the anchor clip {tuple(clip.shape)}")
    variants = {"anchor": clip, "zoom_1.6x": zoomed(clip), "fps_2x": fast_clip}
    out = {}
    for name, video in variants.items():
        weights = kernel_weights(model, video, stage, minus_identity)
        out[name] = {axis: weights[axis][0].tolist() for axis in ("spatial", "temporal")}
    return out
