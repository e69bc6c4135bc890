"""decord calls shared by the in-process reader and the decoder process (imports numpy and decord only).

Kept free of torch and of other ``ean`` modules so the decoder process starts in a fraction of a second.
"""

from __future__ import annotations

import numpy as np


class DecodeFailure(Exception):
    """A video cannot be opened or decoded; ``reason`` says why in one line."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def decoder_threads(path: str, num_threads: int) -> int:
    """VP9 webm can fail with more than 2 decoder threads in decord 0.6: webm always decodes with one."""
    return 1 if path.lower().endswith(".webm") else num_threads


def open_decord(path: str, num_threads: int = 1, size: tuple[int, int] | None = None):
    """A ``decord.VideoReader`` of ``path``; raises DecodeFailure for empty, truncated or non-video files.

    Args:
        path: the video file.
        num_threads: decoder threads (webm: always 1, see :func:`decoder_threads`).
        size: (H, W) every frame is scaled to at decode (ffmpeg's scaler, in the pass that converts the
            frame to RGB); None: frames as stored.
    """
    import decord  # imported here: reading frame folders must not need decord

    height, width = size or (-1, -1)
    try:
        threads = decoder_threads(path, num_threads)
        reader = decord.VideoReader(path, num_threads=threads, width=int(width), height=int(height))
        frames = len(reader)
    except Exception as e:  # decord raises DECORDError / RuntimeError with ffmpeg's message
        raise DecodeFailure(f"cannot open video ({type(e).__name__}: {_first_line(e)})") from None
    if frames < 1:
        raise DecodeFailure("video has no frames")
    return reader


def decode_indices(reader, indices: np.ndarray) -> np.ndarray:
    """Decodes frames ``indices`` (any shape) of an open reader, each distinct frame once.

    Returns:
        uint8 array (N, H, W, 3), N = ``indices.size``, in the order of ``indices.reshape(-1)``.
    """
    flat = np.asarray(indices, dtype=np.int64).reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    try:
        frames = as_numpy(reader.get_batch(unique.tolist()))
    except Exception as e:
        raise DecodeFailure(f"cannot decode frames ({type(e).__name__}: {_first_line(e)})") from None
    if frames.shape[0] != unique.size:
        raise DecodeFailure(f"decoded {frames.shape[0]} frames, expected {unique.size}")
    if unique.size == flat.size and bool((unique == flat).all()):
        return frames
    return frames[inverse.reshape(-1)]


class _DLPackView:
    """Hands numpy a decord NDArray through DLPack (numpy asks for ``__dlpack__``; decord 0.6 has ``to_dlpack``)."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **_):
        return self.array.to_dlpack()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU


def as_numpy(array) -> np.ndarray:
    """A decoded batch as numpy without copying it, else a copy (``asnumpy()`` copies; its cost:
    benchmarks/RESULTS.md, "Data loading, by hand")."""
    try:
        return np.from_dlpack(_DLPackView(array))
    except (AttributeError, BufferError, TypeError, RuntimeError):
        return array.asnumpy()


def _first_line(error: Exception) -> str:
    lines = [s for s in str(error).strip().splitlines() if s.strip()]
    return lines[0][:200] if lines else "no message"
