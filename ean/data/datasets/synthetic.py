"""The synthetic dataset: generated under its root on first use, then read exactly as Something-Something V2.

See :mod:`ean.data.synthetic.generate` for the files and :mod:`ean.data.synthetic.scenes` for the actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ean.data.datasets.something_v2 import SomethingV2
from ean.data.registry import DATASETS
from ean.data.synthetic import generate_synthetic


@DATASETS.register("synthetic")
class Synthetic(SomethingV2):
    """Templated actions over cluttered backgrounds, written as mp4 + SSv2 JSON under ``root`` if absent.

    Args:
        root: folder of the dataset (generated there on first use; reused when its parameters match).
        split: ``"train"`` or ``"val"``.
        num_videos: videos in total (4/5 train, the last 1/5 of each class, at least one, validation).
        num_classes: classes (at most 10; 0 and 1 are the mirrored pair "left to right" / "right to left").
        size: frame height in pixels (width = 4/3 of it).
        seed: generation seed.
        min_frames: shortest clip.
        max_frames: longest clip.
        clutter: background clutter and moving distractors, 0 (none: easy) to 1 (default, hard by design).
        resize: working size (default 240x320, as for Something).
        **options: the rest of :class:`ClipDataset`'s keyword arguments.
    """

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        num_videos: int = 100,
        num_classes: int = 10,
        size: int = 96,
        seed: int = 0,
        min_frames: int = 24,
        max_frames: int = 48,
        clutter: float = 1.0,
        resize: int | Sequence[int] = (240, 320),
        **options: Any,
    ):
        generate_synthetic(
            root,
            num_videos=num_videos,
            num_classes=num_classes,
            size=size,
            seed=seed,
            min_frames=min_frames,
            max_frames=max_frames,
            clutter=clutter,
        )
        super().__init__(root, split, video_ext=".mp4", resize=resize, **options)
