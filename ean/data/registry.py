"""DATASETS: the registry of dataset formats.

Every dataset is a :class:`~ean.data.clip_dataset.ClipDataset` built as
``DATASETS.build(name, root=..., split="train" | "val", **options)``; ``options`` are ClipDataset's
keyword arguments plus the dataset's own (file names, ``media="frames"`` ...).
"""

from ean.data.clip_dataset import ClipDataset
from ean.registry import Registry

DATASETS = Registry(
    "dataset",
    contract=(
        "Dataset(root: str, split: 'train' | 'val', **clip options) -> ClipDataset; item = (clip, label, index), "
        "clip float32 (T, L, 3, S, S) in training, (V, T, L, 3, S, S) at test when V = clips * crops > 1"
    ),
    required_args=("root", "split"),
    base=ClipDataset,
)
