"""Helpers that write real media files for the data tests: videos (PyAV) and JPEG frame folders.

Frame ``i`` of every clip written here is a uniform grey of level ``level(i)`` with a white stripe over
the leftmost tenth of the columns, so a decoded frame tells which frame it was and whether it was flipped.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from ean.data.synthetic import write_mp4

CODECS = {".mp4": "libx264", ".webm": "libvpx-vp9"}


def level(i: int) -> int:
    return 10 + 6 * i


def index_frames(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 (N, H, W, 3): frame i grey ``level(i)``, a white stripe on the left tenth."""
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        frames[i] = level(i)
    frames[:, :, : width // 10] = 255
    return frames


def decode_levels(clip: torch.Tensor) -> np.ndarray:
    """Frame indices from uint8 frames (..., 3, S, S) of index_frames clips (centre region, channel 0)."""
    s = clip.shape[-1]
    centre = clip[..., 0, s // 3 : 2 * s // 3, s // 3 : 2 * s // 3].double().mean(dim=(-1, -2))
    return np.rint((centre.numpy() - 10) / 6).astype(int)


def write_video(path: str, num_frames: int, height: int = 48, width: int = 64) -> str:
    """An index_frames clip as .mp4 (H.264) or .webm (VP9), by the path's extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_mp4(path, index_frames(num_frames, height, width), fps=12, codec=CODECS[os.path.splitext(path)[1]])
    return path


def write_frames(folder: str, num_frames: int, height: int = 48, width: int = 64, tmpl: str = "{:05d}.jpg") -> str:
    """An index_frames clip as a folder of JPEGs numbered from 1."""
    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(index_frames(num_frames, height, width), 1):
        Image.fromarray(frame).save(os.path.join(folder, tmpl.format(i)), quality=95)
    return folder
