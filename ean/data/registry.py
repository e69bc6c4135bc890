"""DATASETS: the registry of dataset variants (annotation formats).

A variant reads the annotations of a split (see :mod:`ean.data.annotations`); the clips around them are
composed by :func:`ean.data.builder.build_dataset`. Adding a dataset is one file in
:mod:`ean.data.datasets` (and its import line there) plus one config file in ``studies/conf/data``.
"""

from ean.registry import Registry

DATASETS = Registry(
    "dataset",
    contract=(
        "Variant(root: str, split: 'train' | 'val', **own options).read() -> Annotations(records, class_names); "
        "optional CLIP_DEFAULTS (dict), fingerprint(data_cfg) -> str, num_classes(data_cfg) -> int"
    ),
    required_args=("root", "split"),
)

import ean.data.datasets  # noqa: E402, F401  the project's datasets register (each imports DATASETS from here)
