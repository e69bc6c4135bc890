"""ean.data: datasets in their official layouts, TSN sampling, whole-clip transforms, synthetic videos.

Public API::

    DATASETS                                  registry: something_v1, something_v2, kinetics400, diving48,
                                              list_file, synthetic
    build_dataset(data_cfg, split)            -> ClipDataset, items (uint8 clip, label, index)
    normalize_clips(clips)                    uint8 clips -> the network's float input (run it on the device)
    build_loader(data_cfg, split, batch_size, seed, distributed=False, global_batch=None) -> DataLoader
    generate_synthetic(root, num_videos=..., ...) -> root
    DataError                                 clear errors (a ValueError)

The config keys are documented in :mod:`ean.data.builder`. Command lines: ``python -m ean.data.check`` lists
the bad files of a dataset; ``python -m ean.data.to_frames`` converts a video dataset into JPEG frame folders.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names load on first use, so that a process needing only part of the package (the synthetic-video writer)
# does not import torch. DATASETS comes from the builder, which registers the datasets; code that reads the
# registry itself (``ean.data.registry``) imports ``ean.data.datasets`` first.
_HOMES = {
    "BadFileReport": "ean.data.bad_files",
    "ClipDataset": "ean.data.clip_dataset",
    "DATASETS": "ean.data.builder",
    "DataError": "ean.data.errors",
    "build_dataset": "ean.data.builder",
    "build_loader": "ean.data.builder",
    "generate_synthetic": "ean.data.synthetic",
    "normalize_clips": "ean.data.transforms",
}

if TYPE_CHECKING:
    from ean.data.bad_files import BadFileReport
    from ean.data.builder import DATASETS, build_dataset, build_loader
    from ean.data.clip_dataset import ClipDataset
    from ean.data.errors import DataError
    from ean.data.synthetic import generate_synthetic
    from ean.data.transforms import normalize_clips

__all__ = [
    "DATASETS",
    "BadFileReport",
    "ClipDataset",
    "DataError",
    "build_dataset",
    "build_loader",
    "generate_synthetic",
    "normalize_clips",
]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'ean.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
