"""decord in this process: open a video, decode only the sampled indices with ``get_batch``.

Open readers only inside DataLoader workers (a reader made before the workers fork can deadlock them);
:class:`ean.data.clip_dataset.ClipDataset` creates its readers lazily, per process.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ean.data.errors import BadMediaError
from ean.data.readers.decord_core import DecodeFailure, decode_indices, open_decord
from ean.data.transforms import Box, cut


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) array -> (N, 3, H, W) tensor view (channels-last strides, no copy).

    Decoded frames may be read-only (decord's buffer, shared through DLPack): the pipeline only reads them
    (every transform writes a new tensor), so torch's warning about non-writable arrays is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(frames).permute(0, 3, 1, 2)


class DecodedArray:
    """Frames decoded in this process, (N, H, W, 3) where the decoder put them; ``crop`` views a region.

    Attributes:
        frame_size: (H, W) of the frames.
    """

    def __init__(self, frames: np.ndarray):
        self.frames = frames
        self.frame_size = tuple(frames.shape[1:3])

    def crop(self, box: Box | None = None) -> torch.Tensor:
        """uint8 (N, 3, h, w) view of ``box`` (None: whole frames), channels-last strides, no copy."""
        frames = to_tensor(self.frames)
        return frames if box is None else cut(frames, box)


class _DecordVideo:
    def __init__(self, reader, path: str):
        self.reader, self.path = reader, path

    def __len__(self) -> int:
        return len(self.reader)

    def decode(self, indices: np.ndarray) -> DecodedArray:
        """Decodes the frames at ``indices`` (any shape), each distinct one once."""
        try:
            return DecodedArray(decode_indices(self.reader, indices))
        except DecodeFailure as e:
            raise BadMediaError(self.path, e.reason) from None

    def get(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 (N, 3, H, W) for ``indices`` (any shape), a view of the decoder's buffer."""
        return self.decode(indices).crop()


class DecordVideoReader:
    """Decodes in this process: fastest, but a decoder hang hangs the caller (see SubprocessVideoReader).

    Args:
        num_threads: decoder threads for non-webm files (1 per DataLoader worker is the efficient choice).
    """

    def __init__(self, num_threads: int = 1):
        self.num_threads = num_threads

    def open(self, path: str, size: tuple[int, int] | None = None) -> _DecordVideo:
        """The video at ``path``; with ``size`` (H, W), its frames decode scaled to that size."""
        try:
            return _DecordVideo(open_decord(path, self.num_threads, size), path)
        except DecodeFailure as e:
            raise BadMediaError(path, e.reason) from None

    def close(self) -> None:
        """Nothing to release (for symmetry with SubprocessVideoReader)."""


def declared_frames(path: str) -> int | None:
    """Frames the container's header promises (PyAV: frame count, else duration x rate); None if unknown.

    A truncated file whose header survived (e.g. webm) still opens and reads as a shorter video; comparing
    the frames found with the frames declared tells it apart.
    """
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if container.duration and stream.average_rate:
                return int(round(container.duration / 1e6 * float(stream.average_rate)))
    except (av.FFmpegError, IndexError, OSError):
        return None
    return None
