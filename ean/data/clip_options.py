"""ClipOptions: the data config's clip keys, typed, and the one place a ClipDataset is assembled from them.

The parts and who owns which option::

    SegmentSampler   num_segments (T), frames_per_segment (L), test_clips (k)
    transform        resize, crop_size, scales, flip, flip_rule (training); test_crop_size, test_crops (test)
    MediaSource      resize, resize_at_decode, decode_timeout_s, decode_threads, image_tmpl
    BadFiles         max_bad_fraction
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ean.data.annotations import Annotations
from ean.data.bad_files import BadFiles
from ean.data.clip_dataset import ClipDataset
from ean.data.clip_transform import EvalClipTransform, TrainClipTransform
from ean.data.errors import DataError
from ean.data.flip import FLIP_RULES, FlipLabels
from ean.data.media_source import MediaSource
from ean.data.sampling import SegmentSampler


@dataclass(frozen=True)
class ClipOptions:
    """How clips are cut from a dataset's videos (the data config's clip keys, see :mod:`ean.data.builder`).

    Attributes:
        num_segments: T (8 or 16).
        frames_per_segment: L (1 sparse; 5 dense, the LMC input).
        resize: working size before cropping: (H, W) (240x320 for Something) or an int short side (256).
        resize_at_decode: videos decode at the working size when that shrinks them (see
            :class:`ean.data.media_source.MediaSource`); otherwise, and for frame folders, the crops are cut
            from the frames as stored and scaled to S in one step.
        crop_size: S in training and, unless ``test_crop_size`` is given, in test.
        scales: multi-scale crop scales.
        flip: random horizontal flip in training (see :mod:`ean.data.flip`).
        flip_rule: ``"swap"``: a flipped sample of a mirrored class takes its partner's label (the authors'
            code); ``"skip"``: direction-sensitive classes are never flipped (the paper's text).
        test_clips: k clips per video at test time.
        test_crops: 1 (centre) or 3 crops per clip at test time.
        test_crop_size: crop side at test time (default ``crop_size``; 256 for Kinetics' 3-crop protocol).
        max_bad_fraction: stop with DataError when more than this fraction of the files is bad.
        decode_timeout_s: give up on a video after this many seconds; 0 decodes in-process, no timeout.
        decode_threads: decord threads per reader for non-webm videos.
        image_tmpl: frame file names in frame folders.
    """

    num_segments: int = 8
    frames_per_segment: int = 1
    resize: int | tuple[int, int] = 256
    resize_at_decode: bool = True
    crop_size: int = 224
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    flip: bool = True
    flip_rule: str = "swap"
    test_clips: int = 1
    test_crops: int = 1
    test_crop_size: int | None = None
    max_bad_fraction: float = 0.01
    decode_timeout_s: float = 30.0
    decode_threads: int = 1
    image_tmpl: str = "{:05d}.jpg"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option with its default."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> ClipOptions:
        """The options of a config's clip keys (lists made tuples; None means the default)."""
        values = {k: v for k, v in values.items() if v is not None}
        if isinstance(values.get("resize"), (list, tuple)):
            values["resize"] = tuple(int(v) for v in values["resize"])
        if "scales" in values:
            values["scales"] = tuple(float(s) for s in values["scales"])
        if values.get("flip_rule", "swap") not in FLIP_RULES:
            raise DataError(f"data.flip_rule = {values['flip_rule']!r}; valid: {', '.join(FLIP_RULES)}")
        return cls(**values)


def clip_dataset(annotations: Annotations, train: bool, options: ClipOptions) -> ClipDataset:
    """The ClipDataset of ``annotations`` for training (``train``) or test, cut as ``options`` say."""
    o = options
    if train:
        flips = FlipLabels.from_class_names(annotations.class_names)
        flips = flips.skipping() if o.flip_rule == "skip" else flips
        transform = TrainClipTransform(o.resize, o.crop_size, o.scales, o.flip, flips)
    else:
        transform = EvalClipTransform(o.resize, o.test_crop_size or o.crop_size, o.test_crops)
    media = MediaSource(
        o.resize,
        resize_at_decode=o.resize_at_decode,
        decode_timeout_s=o.decode_timeout_s,
        decode_threads=o.decode_threads,
        image_tmpl=o.image_tmpl,
    )
    return ClipDataset(
        annotations,
        train=train,
        sampler=SegmentSampler(o.num_segments, o.frames_per_segment, o.test_clips),
        transform=transform,
        media=media,
        bad_files=BadFiles(len(annotations.records), o.max_bad_fraction),
    )
