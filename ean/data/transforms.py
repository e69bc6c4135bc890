"""Geometry and normalisation of whole clips (all frames of a clip in one tensor op).

A clip enters as uint8 frames of shape (N, 3, H0, W0) (N = T * L frames): videos usually already at the
working size (240x320 for Something, short side 256 otherwise; decord scales them at decode, see
``ClipDataset``'s ``resize_at_decode``), frame folders at their stored size. Any remaining resize to the
working size is folded into the crop: a crop box chosen on the working frame is mapped back to source pixels
and cut out and scaled to the output size in one interpolation (uint8, antialiased). Then flip, then the
normalisation, identical in training and test (ImageNet mean/std on [0, 1] values).

Training (TSN's GroupMultiScaleCrop): crop side = min(H, W) * scale for scales (1, .875, .75, .66), height
and width scales at most one step apart, at one of 13 fixed positions; horizontal flip with p = 0.5.
Test: one centre crop, or three crops along the long side (start, centre, end).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Box(NamedTuple):
    """A crop in pixels of the resized frame."""

    top: int
    left: int
    height: int
    width: int


def resized_shape(height: int, width: int, resize: int | Sequence[int]) -> tuple[int, int]:
    """The working size: ``resize`` itself when it is (H, W), else the short side scaled to ``resize``."""
    if not isinstance(resize, int):
        return int(resize[0]), int(resize[1])
    if height <= width:
        return resize, int(round(width * resize / height))
    return int(round(height * resize / width)), resize


def multiscale_crop_box(
    height: int, width: int, size: int, scales: Sequence[float], rng: np.random.Generator, max_distort: int = 1
) -> Box:
    """TSN's multi-scale crop on a (height, width) frame: side lengths from ``scales``, 13 fixed positions."""
    sides = [int(min(height, width) * s) for s in scales]
    sides = [size if abs(s - size) < 3 else s for s in sides]
    pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[rng.integers(len(pairs))]
    crop_h, crop_w = min(crop_h, height), min(crop_w, width)
    positions = _fixed_positions(height, width, crop_h, crop_w)
    top, left = positions[rng.integers(len(positions))]
    return Box(top, left, crop_h, crop_w)


def _fixed_positions(height: int, width: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
    h, w = (height - crop_h) // 4, (width - crop_w) // 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
    return [(i * h, j * w) for i, j in grid]


def center_crop_box(height: int, width: int, size: int) -> Box:
    """A centred ``size`` x ``size`` crop (clipped to the frame)."""
    ch, cw = min(size, height), min(size, width)
    return Box((height - ch) // 2, (width - cw) // 2, ch, cw)


def three_crop_boxes(height: int, width: int, size: int) -> list[Box]:
    """Three ``size`` x ``size`` crops along the long side: start, centre, end."""
    ch, cw = min(size, height), min(size, width)
    top, left = (height - ch) // 2, (width - cw) // 2
    if width >= height:
        return [Box(top, 0, ch, cw), Box(top, left, ch, cw), Box(top, width - cw, ch, cw)]
    return [Box(0, left, ch, cw), Box(top, left, ch, cw), Box(height - ch, left, ch, cw)]


def source_box(box: Box, working: tuple[int, int], frame_size: tuple[int, int]) -> Box:
    """``box`` (in pixels of the frame resized to ``working`` = (H, W)) in pixels of the source frame."""
    sy, sx = frame_size[0] / working[0], frame_size[1] / working[1]
    top, left = int(round(box.top * sy)), int(round(box.left * sx))
    bottom = max(int(round((box.top + box.height) * sy)), top + 1)
    right = max(int(round((box.left + box.width) * sx)), left + 1)
    return Box(top, left, bottom - top, right - left)


def union_box(boxes: Sequence[Box]) -> Box:
    """The smallest box that holds every box of ``boxes``."""
    top, left = min(b.top for b in boxes), min(b.left for b in boxes)
    bottom, right = max(b.top + b.height for b in boxes), max(b.left + b.width for b in boxes)
    return Box(top, left, bottom - top, right - left)


def cut(frames: torch.Tensor, box: Box) -> torch.Tensor:
    """The pixels of ``box`` of frames (..., H, W): a view."""
    return frames[..., box.top : box.top + box.height, box.left : box.left + box.width]


def resize_frames(frames: torch.Tensor, out: tuple[int, int]) -> torch.Tensor:
    """uint8 frames (N, 3, h, w) scaled to ``out`` (antialiased bilinear): always a new tensor, never a view
    (decoders reuse their buffer for the next video). Channels-last input (the readers') stays channels-last,
    and so does the batch (:func:`ean.data.collate.collate_clips`)."""
    if tuple(frames.shape[-2:]) == tuple(out):
        return frames.clone()
    return F.interpolate(frames, size=out, mode="bilinear", antialias=True, align_corners=False)


def crop_resize(frames: torch.Tensor, box: Box, working: tuple[int, int], out: tuple[int, int]) -> torch.Tensor:
    """Cuts ``box`` (in working-size pixels) out of source frames and scales it to ``out`` in one step.

    Args:
        frames: uint8, shape (N, 3, H0, W0), any strides (channels-last from decoders is fastest).
        box: the crop on the frame resized to ``working`` = (H, W).
        working: the working size the box refers to.
        out: output (height, width).

    Returns:
        uint8 tensor of shape (N, 3, out[0], out[1]), never a view of ``frames``.
    """
    return resize_frames(cut(frames, source_box(box, working, tuple(frames.shape[-2:]))), out)


def normalize_clips(clips: torch.Tensor) -> torch.Tensor:
    """The network input from the pipeline's uint8 clips: ``(x / 255 - mean) / std``, the same in training and test.

    Runs wherever ``clips`` is (call it after moving the batch to the device: the copy is then 4x smaller).

    Args:
        clips: uint8 (..., 3, H, W), e.g. (B, T, L, 3, S, S). A floating-point tensor is taken as already
            normalised and returned unchanged (inputs built by hand in tests and tools).

    Returns:
        float32 tensor of the same shape, contiguous.
    """
    if clips.is_floating_point():
        return clips
    if clips.dtype != torch.uint8:
        raise TypeError(f"clips must be uint8 frames (or already normalised floats), got {clips.dtype}")
    scale, shift = _normalisation(clips.device)
    out = torch.empty(clips.shape, dtype=torch.float32, device=clips.device)
    return torch.mul(clips, scale, out=out).sub_(shift)


@functools.lru_cache(maxsize=16)
def _normalisation(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 / (255 std)`` and ``mean / std`` as (3, 1, 1) tensors on ``device``, made once per device."""
    scale = torch.tensor([1.0 / (255.0 * s) for s in IMAGENET_STD], device=device)
    shift = torch.tensor([m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)], device=device)
    return scale.view(3, 1, 1), shift.view(3, 1, 1)
