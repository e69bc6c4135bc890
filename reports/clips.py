"""One validation clip of a trial's dataset, as the figures of ``reports.saliency``, ``reports.features`` and
``reports.kernels`` take it: the uint8 frames, the label, and the frame indices the sampler read.

``FrameRateSampler`` samples a video again at a higher frame rate (the paper's Fig. 10 "2x frame rate"): the
T segments cover the central 1/rate of the video, so consecutive frames are ``rate`` times closer in time than
the anchor clip's and are new frames of the video, not repeated ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ean.data.sampling import SegmentSampler, expand_offsets


@dataclass(frozen=True)
class FrameRateSampler(SegmentSampler):
    """A ``SegmentSampler`` whose test clips are sampled at ``rate`` x the frame rate of the usual test clip.

    The usual test clip puts segment ``t``'s start at ``tick * (t + 0.5)``, ``tick = (F - L + 1) / T`` for a
    video of F frames. Here the tick is ``tick / rate`` and the clip is centred on the video:
    start ``t`` = ``floor(span / 2 + (t + (c + 0.5) / k - T / 2) * tick / rate)`` (``span = F - L + 1``; clip c of
    k), so ``rate = 1`` gives the usual test clip and ``rate = 2`` the central half of the video at half the
    stride (for even T: segments T/2 ... 3T/2 - 1 of the usual clip with 2T segments). Training sampling is the
    usual one.

    Args:
        rate: the frame-rate factor (> 0; 2 for the paper's "2x frame rate").
    """

    rate: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")

    def test(self, num_frames: int) -> np.ndarray:
        """Frame indices of the k test clips at ``rate`` x the frame rate, shape (k, T, L)."""
        t, length, k = self.num_segments, self.frames_per_segment, self.test_clips
        span = max(num_frames - length + 1, 0)
        tick = span / t / self.rate
        clips = []
        for c in range(k):
            starts = span / 2 + (np.arange(t) + (c + 0.5) / k - t / 2) * tick
            offsets = np.clip(np.floor(starts), 0, max(span - 1, 0)).astype(np.int64)
            clips.append(expand_offsets(offsets, length, num_frames))
        return np.stack(clips)


@dataclass
class Clip:
    """One validation clip.

    Attributes:
        frames: uint8 (T, L, 3, S, S), the clip as the dataset gives it (``normalize_clips`` makes the input).
        label: the true class.
        class_name: its name.
        index: the video's index in the validation list (the next good one when the asked one is a bad file).
        path: the video's file or frame folder.
        frame_indices: (T, L) the video frame numbers the clip is made of.
        num_frames: the video's number of frames.
    """

    frames: torch.Tensor
    label: int
    class_name: str
    index: int
    path: str
    frame_indices: np.ndarray
    num_frames: int

    def input(self) -> torch.Tensor:
        """The network's input for this clip: float (1, T, L, 3, S, S)."""
        from ean.data import normalize_clips

        return normalize_clips(self.frames.unsqueeze(0))

    def rgb_frames(self, rgb_frame: int | None = None) -> np.ndarray:
        """(T, S, S, 3) uint8: the frame of each segment that the RGB path sees (None: the middle one)."""
        length = self.frames.shape[1]
        index = length // 2 if rgb_frame is None else rgb_frame
        return self.frames[:, index].permute(0, 2, 3, 1).contiguous().numpy()


def validation_dataset(data_cfg: dict[str, Any], rate: float = 1.0):
    """The validation ClipDataset of a trial's data config with one centre clip and crop per video; with
    ``rate`` != 1 its clips are sampled at ``rate`` x the frame rate (``FrameRateSampler``)."""
    from ean.data import build_dataset

    dataset = build_dataset({**data_cfg, "test_clips": 1, "test_crops": 1}, "val")
    if rate != 1.0:
        s = dataset.sampler
        dataset.sampler = FrameRateSampler(s.num_segments, s.frames_per_segment, 1, rate=float(rate))
    return dataset


def validation_clip(data_cfg: dict[str, Any], video: int = 0, rate: float = 1.0, dataset=None) -> Clip:
    """Validation video ``video`` of ``data_cfg``'s dataset as one centre clip (see ``validation_dataset``).

    Raises:
        ValueError: ``video`` is out of range.
    """
    dataset = dataset or validation_dataset(data_cfg, rate)
    if not 0 <= video < len(dataset):
        raise ValueError(f"--video {video} is out of range: the validation split has {len(dataset)} videos")
    frames, label, index = dataset[video]
    record = dataset.records[index]
    num_frames = len(dataset.media.open(record))
    indices = dataset.sampler.test(num_frames)[0]
    return Clip(
        frames=frames,
        label=int(label),
        class_name=dataset.class_names[label],
        index=int(index),
        path=str(record.path),
        frame_indices=indices,
        num_frames=num_frames,
    )
