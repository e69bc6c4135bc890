"""Annotations: what a dataset variant reads from its files, the videos and their classes.

A dataset variant (one file in :mod:`ean.data.datasets`, registered in ``DATASETS``) is a class whose
constructor takes ``root``, ``split`` and its own options, and whose ``read()`` returns the split's
:class:`Annotations`. Everything about clips (sampling, transforms, decoding, bad files) is composed around
them by :func:`ean.data.builder.build_dataset` from the data config. A variant may declare:

- ``CLIP_DEFAULTS``: clip options it changes by default (Something's 240x320 working size);
- ``GENERATED = True``: it writes its own files under the root (no data to download);
- ``fingerprint(data_cfg) -> str`` (static): which data it is, when not the digest of what ``read()`` returns
  for both splits (the synthetic dataset's is its generator settings);
- ``num_classes(data_cfg) -> int | None`` (static): its class count without reading any file, when known;
- ``VIDEOS = {"train": N, "val": M}``, or static ``official_videos(data_cfg) -> {"train": N, "val": M}`` when
  they depend on its options: the official lists' sizes, for estimates of a study's cost where the data is not;
  or static ``videos(data_cfg, split) -> int``: the split sizes, always (``ean.data.identity.split_size``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ean.data.errors import DataError
from ean.data.records import VideoRecord


@dataclass(frozen=True)
class Annotations:
    """The videos of a split and the class names.

    Attributes:
        records: the videos (path, label, media), in the annotation file's order.
        class_names: name of each class; index = label.
    """

    records: tuple[VideoRecord, ...]
    class_names: tuple[str, ...]

    def __post_init__(self):
        if not self.records:
            raise DataError("the dataset holds no videos (empty annotation list)")

    @classmethod
    def of(cls, records: Sequence[VideoRecord], class_names: Sequence[str]) -> Annotations:
        return cls(tuple(records), tuple(class_names))
