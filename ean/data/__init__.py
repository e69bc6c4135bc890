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

from ean.data.bad_files import BadFileReport
from ean.data.builder import build_dataset, build_loader
from ean.data.clip_dataset import ClipDataset
from ean.data.errors import DataError
from ean.data.registry import DATASETS
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
