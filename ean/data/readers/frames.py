"""Folders of JPEG frames (``<video>/00001.jpg, 00002.jpg, ...``), decoded with Pillow (libjpeg-turbo).

A folder whose frame numbers have a gap (a missing frame) is broken: :class:`BadMediaError` names the
folder and the missing frames. Only the sampled frames are read; each distinct frame once, and only the
region the clip's crops need is copied into the clip's frames. (torchvision's ``decode_jpeg`` is faster
(benchmarks/RESULTS.md, "Data loading, by hand"), but deprecated since torchvision 0.29, so it is not used.)
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch
from PIL import Image

from ean.data.errors import BadMediaError
from ean.data.transforms import Box


def template_pattern(image_tmpl: str) -> re.Pattern:
    """A regex with one group, the frame number, for a template such as ``"{:05d}.jpg"`` or ``"img_{:05d}.jpg"``."""
    before, _, rest = image_tmpl.partition("{")
    _, _, after = rest.partition("}")
    return re.compile(f"^{re.escape(before)}(\\d+){re.escape(after)}$")


def frame_numbers(folder: str, image_tmpl: str) -> list[int]:
    """The frame numbers present in ``folder`` (sorted); raises BadMediaError if it cannot be listed."""
    pattern = template_pattern(image_tmpl)
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise BadMediaError(folder, f"cannot list frame folder ({e.strerror or e})") from None
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


def count_frames(folder: str, image_tmpl: str, first: int = 1) -> int:
    """Frames in a folder numbered ``first, first + 1, ...``; raises BadMediaError for an empty folder or a gap."""
    numbers = frame_numbers(folder, image_tmpl)
    if not numbers:
        raise BadMediaError(folder, f"no frames named like {image_tmpl.format(first)!r}")
    expected = range(first, numbers[-1] + 1)
    if len(numbers) != len(expected):
        missing = sorted(set(expected) - set(numbers))
        shown = ", ".join(image_tmpl.format(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BadMediaError(folder, f"{len(missing)} missing frame(s): {shown}")
    return len(numbers)


class _FrameFolder:
    def __init__(self, folder: str, image_tmpl: str, first: int, num_frames: int):
        self.folder, self.image_tmpl, self.first, self.num_frames = folder, image_tmpl, first, num_frames

    def __len__(self) -> int:
        return self.num_frames

    def decode(self, indices: np.ndarray) -> DecodedImages:
        """Decodes the frames at 0-based ``indices`` (any shape), each distinct one once."""
        flat = np.asarray(indices, dtype=np.int64).reshape(-1)
        unique, inverse = np.unique(flat, return_inverse=True)
        paths = [os.path.join(self.folder, self.image_tmpl.format(int(i) + self.first)) for i in unique]
        try:
            images = [read_rgb(p) for p in paths]
        except (OSError, ValueError) as e:
            raise BadMediaError(self.folder, f"cannot read frames ({_first_line(e)})") from None
        if len({tuple(image.shape) for image in images}) > 1:
            raise BadMediaError(self.folder, f"frames of different sizes: {sorted({i.shape for i in images})}")
        return DecodedImages([images[j] for j in inverse.reshape(-1)])

    def get(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 (N, 3, H, W) for 0-based ``indices`` (any shape, N = indices.size)."""
        return self.decode(indices).crop()


class DecodedImages:
    """Decoded frames, one (H, W, 3) array each; ``crop`` stacks only the pixels asked for.

    Attributes:
        frame_size: (H, W) of the frames.
    """

    def __init__(self, images: list[np.ndarray]):
        self.images = images
        self.frame_size = tuple(images[0].shape[:2])

    def crop(self, box: Box | None = None) -> torch.Tensor:
        """uint8 (N, 3, h, w) of ``box`` (None: whole frames), channels-last strides, new memory."""
        images = self.images
        if box is not None:
            rows, cols = slice(box.top, box.top + box.height), slice(box.left, box.left + box.width)
            images = [image[rows, cols] for image in images]
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


def read_rgb(path: str) -> np.ndarray:
    """One image file as uint8 (H, W, 3)."""
    with Image.open(path) as image:
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or ["no message"])[0][:200]


class FrameFolderReader:
    """Reads frame folders.

    Args:
        image_tmpl: file name of frame ``i`` as a format string (``"{:05d}.jpg"``; TSN lists use ``"img_{:05d}.jpg"``).
        first: the number of the first frame (1 in every official layout).
    """

    def __init__(self, image_tmpl: str = "{:05d}.jpg", first: int = 1):
        self.image_tmpl, self.first = image_tmpl, first

    def open(self, folder: str) -> _FrameFolder:
        return _FrameFolder(folder, self.image_tmpl, self.first, count_frames(folder, self.image_tmpl, self.first))

    def close(self) -> None:
        """Nothing to release."""
