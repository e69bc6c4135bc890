"""The training and test pipelines: source frames -> uint8 views, as whole-clip tensor ops.

Dataflow (N = T * L frames of one clip, S = crop size)::

    train: uint8 (N, 3, H0, W0) -> multi-scale crop + resize (N, 3, S, S) -> flip? -> uint8 (1, N, 3, S, S)
    test:  uint8 (N, 3, H0, W0) -> centre crop or 3 crops, resize -> uint8 (C, N, 3, S, S)

The views stay uint8; :func:`ean.data.transforms.normalize_clips` normalises them on the device, in
training and test alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ean.data.flip import FlipLabels
from ean.data.transforms import (
    center_crop_box,
    crop_resize,
    multiscale_crop_box,
    resized_shape,
    three_crop_boxes,
)


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

    def __call__(self, frames: torch.Tensor, label: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """Args: frames uint8 (N, 3, H0, W0). Returns: uint8 (1, N, 3, S, S) and the (possibly swapped) label."""
        working = resized_shape(frames.shape[-2], frames.shape[-1], self.resize)
        box = multiscale_crop_box(*working, self.crop_size, self.scales, rng)
        clip = crop_resize(frames, box, working, (self.crop_size, self.crop_size))
        if self.flip and rng.random() < 0.5 and self.flip_labels.can_flip(label):
            clip, label = clip.flip(-1), self.flip_labels.flipped(label)
        return clip.unsqueeze(0), label


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

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Args: frames uint8 (N, 3, H0, W0). Returns: uint8 (C, N, 3, S, S), C = ``crops``."""
        working = resized_shape(frames.shape[-2], frames.shape[-1], self.resize)
        if self.crops == 1:
            boxes = [center_crop_box(*working, self.crop_size)]
        else:
            boxes = three_crop_boxes(*working, self.crop_size)
        out = (self.crop_size, self.crop_size)
        return torch.stack([crop_resize(frames, b, working, out) for b in boxes])
