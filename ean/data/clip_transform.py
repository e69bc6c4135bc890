"""The training and test pipelines: source frames -> uint8 views, as whole-clip tensor ops.

A transform first *plans* a clip from the source frame size alone (which pixels each view takes, whether
it is flipped), so that a reader hands over only the region the views lie in (the decoder process copies
that region, not whole frames, see :mod:`ean.data.readers`); then :func:`render` cuts and scales the views.

Dataflow (N = T * L frames of one clip, S = crop size, V views)::

    plan(frame size (H0, W0), label, rng) -> CropPlan: region (source pixels), V boxes in it, flip, label
    frames of the region, uint8 (N, 3, h, w) -> render -> uint8 (V, N, 3, S, S)
    train: V = 1, multi-scale crop, flip?      test: centre crop (V = 1) or 3 crops (V = 3)

The views stay uint8; :func:`ean.data.transforms.normalize_clips` normalises them on the device, in
training and test alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ean.data.flip import FlipLabels
from ean.data.transforms import (
    Box,
    center_crop_box,
    cut,
    multiscale_crop_box,
    resize_frames,
    resized_shape,
    source_box,
    three_crop_boxes,
    union_box,
)


class CropPlan(NamedTuple):
    """The views of one clip, chosen from the source frame size before any pixel is touched.

    Attributes:
        region: the source pixels all views lie in (the part of the frames a reader must hand over).
        crops: each view's box, in pixels of ``region``.
        size: (height, width) every view is scaled to.
        flip: whether the views are mirrored horizontally.
        label: the clip's label, swapped if the flip mirrors a direction-sensitive class.
    """

    region: Box
    crops: tuple[Box, ...]
    size: tuple[int, int]
    flip: bool
    label: int


def plan_views(boxes: Sequence[Box], size: int, flip: bool = False, label: int = -1) -> CropPlan:
    """A CropPlan for views at ``boxes`` (source pixels): their union is the region."""
    region = union_box(boxes)
    crops = tuple(Box(b.top - region.top, b.left - region.left, b.height, b.width) for b in boxes)
    return CropPlan(region, crops, (size, size), flip, label)


def render(region: torch.Tensor, plan: CropPlan) -> torch.Tensor:
    """Cuts and scales the planned views out of the region's frames.

    Args:
        region: uint8 (N, 3, h, w), the frames' pixels of ``plan.region`` (channels-last is fastest).
        plan: from a transform's ``plan``.

    Returns:
        uint8 (V, N, 3, S, S), V = ``len(plan.crops)``; new memory, never a view of ``region``.
    """
    views = [resize_frames(cut(region, box), plan.size) for box in plan.crops]
    if plan.flip:
        views = [v.flip(-1) for v in views]
    return views[0].unsqueeze(0) if len(views) == 1 else torch.stack(views)


class TrainClipTransform:
    """Multi-scale crop and label-aware horizontal flip of one training clip.

    Args:
        resize: working size: (H, W) (240x320 for Something) or an int short side (256).
        crop_size: S, output side (224).
        scales: crop sides as fractions of the working short side.
        flip: whether to flip horizontally with p = 0.5.
        flip_labels: label swaps under a flip (see :mod:`ean.data.flip`); ``None``: labels never change.
    """

    def __init__(
        self,
        resize: int | Sequence[int],
        crop_size: int = 224,
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        flip: bool = True,
        flip_labels: FlipLabels | None = None,
    ):
        self.resize, self.crop_size, self.scales = resize, crop_size, tuple(scales)
        self.flip, self.flip_labels = flip, flip_labels or FlipLabels()

    def plan(self, frame_size: tuple[int, int], label: int, rng: np.random.Generator) -> CropPlan:
        """Draws the crop (size, position) and the flip, in this order, from ``rng``."""
        working = resized_shape(*frame_size, self.resize)
        box = multiscale_crop_box(*working, self.crop_size, self.scales, rng)
        flip = self.flip and rng.random() < 0.5 and self.flip_labels.can_flip(label)
        label = self.flip_labels.flipped(label) if flip else label
        return plan_views([source_box(box, working, frame_size)], self.crop_size, flip, label)

    def __call__(self, frames: torch.Tensor, label: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """Args: frames uint8 (N, 3, H0, W0). Returns: uint8 (1, N, 3, S, S) and the (possibly swapped) label."""
        plan = self.plan(tuple(frames.shape[-2:]), label, rng)
        return render(cut(frames, plan.region), plan), plan.label


class EvalClipTransform:
    """Centre crop (or three crops) of a test clip.

    Args:
        resize: working size, as for training.
        crop_size: S (224; 256 for Kinetics' 3-crop protocol).
        crops: 1 (centre) or 3 (start, centre, end of the long side).
    """

    def __init__(self, resize: int | Sequence[int], crop_size: int = 224, crops: int = 1):
        if crops not in (1, 3):
            raise ValueError(f"test crops must be 1 or 3, got {crops}")
        self.resize, self.crop_size, self.crops = resize, crop_size, crops

    def plan(self, frame_size: tuple[int, int], label: int = -1, rng: np.random.Generator | None = None) -> CropPlan:
        """The fixed test views (``rng`` is not used: test clips are deterministic)."""
        working = resized_shape(*frame_size, self.resize)
        if self.crops == 1:
            boxes = [center_crop_box(*working, self.crop_size)]
        else:
            boxes = three_crop_boxes(*working, self.crop_size)
        return plan_views([source_box(b, working, frame_size) for b in boxes], self.crop_size, label=label)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Args: frames uint8 (N, 3, H0, W0). Returns: uint8 (C, N, 3, S, S), C = ``crops``."""
        plan = self.plan(tuple(frames.shape[-2:]))
        return render(cut(frames, plan.region), plan)
