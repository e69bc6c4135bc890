"""ClipDataset: the one base class of every dataset (annotation parsing is all that differs).

Dataflow of one sample::

    record (path, label) -> reader.open(path, decode_size(record)) -> sampler: indices (T, L) | (k, T, L)
      -> media.decode(indices) -> transform.plan(frame size): crop boxes, flip, label
      -> decoded.crop(plan.region): uint8 (N, 3, h, w), only the pixels the views need
      -> render: uint8 views (C, N, 3, S, S) (normalised later, on the device)
    decode_size: a video's working size (H, W) when decord can scale it down at decode, else None (stored size)
    train: ((T, L, 3, S, S), label after flip, index)
    test:  ((V, T, L, 3, S, S), label, index), V = test_clips * test_crops (clip-major); (T, L, 3, S, S) if V == 1

A bad file never raises here: it is skipped (the next video in the list is returned, with its own index),
logged in ``dataset.bad_files`` and warned about; see :mod:`ean.data.bad_files`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ean.data.bad_files import BadFiles
from ean.data.clip_transform import EvalClipTransform, TrainClipTransform, render
from ean.data.errors import BadMediaError, DataError
from ean.data.flip import FlipLabels
from ean.data.readers import DecordVideoReader, FrameFolderReader, SubprocessVideoReader
from ean.data.readers.stored_size import stored_frame_size
from ean.data.readers.video import declared_frames
from ean.data.records import VideoRecord
from ean.data.sampling import SegmentSampler
from ean.data.transforms import resized_shape

MAX_CONSECUTIVE_BAD = 32


class ClipDataset(Dataset):
    """Clips of annotated videos or frame folders, sampled TSN-style and augmented as whole clips.

    Args:
        records: the videos (path, label, media).
        class_names: name of each class; index = label.
        train: training sampling and augmentation (else test: centre sampling, centre or 3 crops).
        num_segments: T (8 or 16).
        frames_per_segment: L (1 sparse; 5 dense, the LMC input).
        resize: working size before cropping: [H, W] (240x320 for Something) or an int short side (256).
        resize_at_decode: videos decode at the working size (decord's ``width`` / ``height``: scaled in the
            pass that converts frames to RGB; a short side's working size comes from the video's header, see
            :mod:`ean.data.readers.stored_size`), and the crops are cut from those frames. Otherwise, and for
            frame folders, the crops are cut from the frames as stored and scaled to S in one step.
        crop_size: S in training and, unless ``test_crop_size`` is given, in test.
        scales: multi-scale crop scales.
        flip: random horizontal flip in training (labels of mirrored classes swapped; see :mod:`ean.data.flip`).
        test_clips: k clips per video at test time.
        test_crops: 1 (centre) or 3 crops per clip at test time.
        test_crop_size: crop side at test time (default ``crop_size``; 256 for Kinetics' 3-crop protocol).
        max_bad_fraction: stop with DataError when more than this fraction of the files is bad.
        decode_timeout_s: give up on a video after this many seconds (decodes in a killable process); 0: decode
            in-process with no timeout.
        decode_threads: decord threads per reader for non-webm videos.
        image_tmpl: frame file names in frame folders.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        class_names: Sequence[str],
        *,
        train: bool,
        num_segments: int = 8,
        frames_per_segment: int = 1,
        resize: int | Sequence[int] = 256,
        resize_at_decode: bool = True,
        crop_size: int = 224,
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        flip: bool = True,
        test_clips: int = 1,
        test_crops: int = 1,
        test_crop_size: int | None = None,
        max_bad_fraction: float = 0.01,
        decode_timeout_s: float = 30.0,
        decode_threads: int = 1,
        image_tmpl: str = "{:05d}.jpg",
    ):
        if not records:
            raise DataError("the dataset holds no videos (empty annotation list)")
        self.records, self.class_names, self.train = list(records), list(class_names), train
        self.sampler = SegmentSampler(num_segments, frames_per_segment, test_clips)
        resize = resize if isinstance(resize, int) else tuple(resize)
        self.resize, self.resize_at_decode = resize, resize_at_decode
        self.flip_labels = FlipLabels.from_class_names(self.class_names)
        if train:
            self.transform = TrainClipTransform(resize, crop_size, scales, flip, self.flip_labels)
        else:
            self.transform = EvalClipTransform(resize, test_crop_size or crop_size, test_crops)
        self.bad_files = BadFiles(len(self.records), max_bad_fraction)
        self.decode_timeout_s, self.decode_threads, self.image_tmpl = decode_timeout_s, decode_threads, image_tmpl
        self._readers: dict | None = None
        self._readers_pid: int | None = None

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
        """Sample ``item``: an index, or ``(index, seed)`` from :class:`ean.data.builder.SeededSampler` (the
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
        media = self.open(record)
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

    def open(self, record: VideoRecord):
        """The video or frame folder of ``record``, opened with this process's reader (see ``decode_size``)."""
        size, reader = self.decode_size(record), self.reader(record.media)
        return reader.open(record.path) if size is None else reader.open(record.path, size)

    def decode_size(self, record: VideoRecord) -> tuple[int, int] | None:
        """(H, W) to decode ``record``'s frames at, or None for their stored size.

        The working size when ``resize_at_decode`` and it has fewer pixels than the stored size, read from the
        header (an enlargement is cheaper after the crop). A short-side working size needs the stored size; a
        fixed one is used even when the header cannot be read."""
        if not self.resize_at_decode or record.media != "video":
            return None
        stored = stored_frame_size(record.path)
        if stored is None:
            return None if isinstance(self.resize, int) else self.resize
        working = resized_shape(*stored, self.resize)
        return working if working[0] * working[1] < stored[0] * stored[1] else None

    def reader(self, media: str):
        """This process's reader for ``"video"`` or ``"frames"`` (made on first use, after workers fork)."""
        if self._readers is None or self._readers_pid != os.getpid():
            self._readers, self._readers_pid = {}, os.getpid()
        if media not in self._readers:
            self._readers[media] = self._make_reader(media)
        return self._readers[media]

    def _make_reader(self, media: str):
        if media == "frames":
            return FrameFolderReader(self.image_tmpl)
        if self.decode_timeout_s and self.decode_timeout_s > 0:
            return SubprocessVideoReader(self.decode_timeout_s, self.decode_threads)
        return DecordVideoReader(self.decode_threads)

    def check_file(self, index: int, full: bool = False) -> str | None:
        """Why video ``index`` is broken (None if it is not): opens it, decodes the test indices and the last
        frame (with ``full``, every frame), and compares a video's frames with those its header declares."""
        record = self.records[index]
        try:
            media = self.reader(record.media).open(record.path)
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

    def close(self) -> None:
        """Stops this process's decoder processes (they also stop on their own when it exits)."""
        for reader in (self._readers or {}).values():
            reader.close()

    def __getstate__(self):
        return {**self.__dict__, "_readers": None, "_readers_pid": None}

    def __repr__(self) -> str:
        mode = "train" if self.train else "test"
        return f"{type(self).__name__}({len(self)} videos, {self.num_classes} classes, {mode}, {self.sampler})"
