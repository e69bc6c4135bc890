"""Which frames a clip is made of: TSN sparse segments, dense runs of L frames, k clips for testing.

All indices are 0-based frame numbers of a video (or frame folder) with ``num_frames`` frames. A clip is
``T`` segments (``num_segments``); each segment contributes ``L`` consecutive frames
(``frames_per_segment``: 1 for sparse TSN input, 5 for the LMC's dense input). Short videos are handled
as TSN does: when a video has fewer than ``T * L`` frames, training offsets are drawn sorted at random
(or all 0 when there are no more frames than segments), and frames past the end repeat the last frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sparse_train_offsets(num_frames: int, num_segments: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """TSN training offsets: one random start in each of ``num_segments`` equal segments.

    Args:
        num_frames: frames in the video.
        num_segments: T.
        length: L, consecutive frames taken from each start (the last start is at most ``num_frames - L``).
        rng: the random source.

    Returns:
        int64 array of shape (T,), non-decreasing.
    """
    span = num_frames - length + 1
    segment = span // num_segments
    if segment > 0:
        return np.arange(num_segments) * segment + rng.integers(segment, size=num_segments)
    if num_frames > num_segments:
        return np.sort(rng.integers(max(span, 1), size=num_segments))
    return np.zeros(num_segments, dtype=np.int64)


def sparse_test_offsets(num_frames: int, num_segments: int, length: int, clip: int = 0, clips: int = 1) -> np.ndarray:
    """TSN test offsets, as the authors' test code places them: one clip takes each segment's centre, and clip
    ``c`` of ``k`` > 1 starts at ``c / k`` of each segment (two clips: its start and its centre).

    Start ``t`` is ``floor(tick * (t + f))`` with ``tick = (num_frames - L + 1) / T`` and ``f = 0.5`` for one
    clip, ``c / k`` for k clips (``dataset.py``, ``_get_test_indices``, of the authors' code).

    Returns:
        int64 array of shape (T,), non-decreasing.
    """
    tick = max(num_frames - length + 1, 0) / num_segments
    fraction = 0.5 if clips == 1 else clip / clips
    starts = tick * (np.arange(num_segments) + fraction)
    return np.floor(starts).astype(np.int64)


def expand_offsets(offsets: np.ndarray, length: int, num_frames: int) -> np.ndarray:
    """Turns starts into runs of ``length`` consecutive frames; frames past the end repeat the last one.

    Args:
        offsets: shape (T,).

    Returns:
        int64 array of shape (T, L).
    """
    frames = offsets[:, None] + np.arange(length)[None, :]
    return np.clip(frames, 0, max(num_frames - 1, 0)).astype(np.int64)


@dataclass(frozen=True)
class SegmentSampler:
    """Chooses the frames of training and test clips.

    Args:
        num_segments: T, segments per clip (8 or 16).
        frames_per_segment: L, consecutive frames per segment (1 sparse; 5 dense, for the LMC).
        test_clips: k, clips per video at test time, spread evenly (TSN's multi-clip testing).
    """

    num_segments: int = 8
    frames_per_segment: int = 1
    test_clips: int = 1

    def __post_init__(self):
        if min(self.num_segments, self.frames_per_segment, self.test_clips) < 1:
            raise ValueError(f"num_segments, frames_per_segment and test_clips must be >= 1: {self}")

    def train(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Frame indices of one training clip, shape (T, L)."""
        offsets = sparse_train_offsets(num_frames, self.num_segments, self.frames_per_segment, rng)
        return expand_offsets(offsets, self.frames_per_segment, num_frames)

    def test(self, num_frames: int) -> np.ndarray:
        """Frame indices of the k test clips, shape (k, T, L)."""
        clips = [
            sparse_test_offsets(num_frames, self.num_segments, self.frames_per_segment, c, self.test_clips)
            for c in range(self.test_clips)
        ]
        return np.stack([expand_offsets(o, self.frames_per_segment, num_frames) for o in clips])
