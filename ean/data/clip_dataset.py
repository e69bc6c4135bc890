"""ClipDataset: one clip dataset for every dataset variant, composed of annotations, sampler, transform, media.

Dataflow of one sample::

    record (path, label) -> media.open(record) (its reader, at its decode size)
      -> sampler: indices (T, L) | (k, T, L)
      -> media.decode(indices) -> transform.plan(frame size): crop boxes, flip, label
      -> decoded.crop(plan.region): uint8 (N, 3, h, w), only the pixels the views need
      -> render: uint8 views (C, N, 3, S, S) (normalised later, on the device)
    train: ((T, L, 3, S, S), label after flip, index)
    test:  ((V, T, L, 3, S, S), label, index), V = test_clips * test_crops (clip-major); (T, L, 3, S, S) if V == 1

A bad file never raises here: it is skipped (the next video in the list is returned, with its own index),
logged in ``dataset.bad_files`` and warned about; see :mod:`ean.data.bad_files`.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.utils.data import Dataset

from ean.data.annotations import Annotations
from ean.data.bad_files import BadFiles
from ean.data.clip_transform import EvalClipTransform, TrainClipTransform, render
from ean.data.errors import BadMediaError, DataError
from ean.data.flip import FlipLabels
from ean.data.media_source import MediaSource
from ean.data.readers.video import declared_frames
from ean.data.records import VideoRecord
from ean.data.sampling import SegmentSampler

MAX_CONSECUTIVE_BAD = 32


class ClipDataset(Dataset):
    """Clips of annotated videos or frame folders: annotations, a sampler, a transform and a media source.

    Args:
        annotations: the split's videos and class names (read by a dataset variant).
        train: training sampling and augmentation (else test: centre sampling, the transform's test views).
        sampler: the frame indices of a clip (T segments of L frames; k clips at test time).
        transform: the whole-clip crops, flip and label of a sample (``TrainClipTransform`` in training,
            ``EvalClipTransform`` at test).
        media: opens the records' videos and frame folders (readers, decode size, timeouts).
        bad_files: the bad-file policy (skipped, logged, and a stop beyond its fraction).
    """

    def __init__(
        self,
        annotations: Annotations,
        *,
        train: bool,
        sampler: SegmentSampler,
        transform: TrainClipTransform | EvalClipTransform,
        media: MediaSource,
        bad_files: BadFiles,
    ):
        self.records, self.class_names = list(annotations.records), list(annotations.class_names)
        self.train, self.sampler, self.transform = train, sampler, transform
        self.media, self.bad_files = media, bad_files

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> list[int]:
        """The label of every video, in order."""
        return [r.label for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        """Sample ``item``: an index, or ``(index, seed)`` from :class:`ean.data.global_batches.GlobalBatchSampler` (the
        seed fixes the training clip's randomness; without one it is drawn from torch's global generator)."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        for step in range(MAX_CONSECUTIVE_BAD):
            j = (index + step) % len(self.records)
            record = self.records[j]
            if self.bad_files.is_bad(record.path):
                self.bad_files.record(record.path)
                continue
            try:
                return self._sample(record, j, seed)
            except BadMediaError as e:
                self.bad_files.record(e.path, e.reason)
        raise DataError(f"{MAX_CONSECUTIVE_BAD} consecutive bad files from index {index}: {self.bad_files.files()}")

    def _sample(self, record: VideoRecord, index: int, seed: int | None) -> tuple[torch.Tensor, int, int]:
        media = self.media.open(record)
        if self.train:  # one stream draws the frames, then the crop, then the flip
            rng = np.random.default_rng(int(torch.randint(2**62, ())) if seed is None else seed)
            indices = self.sampler.train(len(media), rng)
        else:
            rng, indices = None, self.sampler.test(len(media))
        decoded = media.decode(indices)
        plan = self.transform.plan(decoded.frame_size, record.label, rng)
        views = render(decoded.crop(plan.region), plan)  # (C, k*T*L, 3, S, S)
        T, L = self.sampler.num_segments, self.sampler.frames_per_segment
        views = views.reshape(views.shape[0], -1, T, L, *views.shape[-3:]).transpose(0, 1)
        views = views.reshape(-1, T, L, *views.shape[-3:])  # (k*C, T, L, 3, S, S), clip-major
        return (views[0] if views.shape[0] == 1 else views), plan.label, index

    def check_file(self, index: int, full: bool = False) -> str | None:
        """Why video ``index`` is broken (None if it is not): opens it, decodes the test indices and the last
        frame (with ``full``, every frame), and compares a video's frames with those its header declares."""
        record = self.records[index]
        try:
            media = self.media.reader(record.media).open(record.path)
            n = len(media)
            wanted = np.arange(n) if full else np.append(self.sampler.test(n).reshape(-1), n - 1)
            for chunk in np.array_split(wanted, max(1, len(wanted) // 64)):
                media.get(chunk)
        except BadMediaError as e:
            return e.reason
        declared = declared_frames(record.path) if record.media == "video" else None
        if declared and n < 0.9 * declared - 1:
            return f"truncated: {n} frames readable of the {declared} its header declares"
        return None

    @functools.cached_property
    def flip_labels(self) -> FlipLabels:
        """The label swaps a horizontal flip makes between these classes (see :mod:`ean.data.flip`)."""
        return FlipLabels.from_class_names(self.class_names)

    def close(self) -> None:
        """Stops this process's decoder processes (they also stop on their own when it exits)."""
        self.media.close()

    def __repr__(self) -> str:
        mode = "train" if self.train else "test"
        return f"{type(self).__name__}({len(self)} videos, {self.num_classes} classes, {mode}, {self.sampler})"
