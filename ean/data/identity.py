"""What a data config reads, as data: its identity (for trial keys), its fingerprint and its class count.

A data config says what the clips are (dataset, sampling, augmentation, protocol) and where and how fast
they are read (root, loader workers, decoder threads and timeouts). The identity keeps the first and drops
the second, so a clone at another path, data moved elsewhere, or more loader workers name the same clips.
The fingerprint says which data it is: the contents of the annotation files (or the synthetic generator's
settings), never their location.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

from ean.data.builder import LOADER_KEYS, build_dataset, variant_options
from ean.data.errors import DataError
from ean.data.registry import DATASETS
from ean.files_read import generation, note

#: Keys that say where the data lies.
LOCATION_KEYS = ("root", "frames_root")
#: Keys that say how fast it is read, not what is read.
SPEED_KEYS = (*LOADER_KEYS, "decode_timeout_s", "decode_threads")
#: Options added after trial keys were first published: named in the identity only when not at their default,
#: so that the keys of every run made before they existed stand.
OMITTED_AT_DEFAULT = ("flip_rule",)
#: Annotation files whose contents are a real dataset's fingerprint.
ANNOTATION_SUFFIXES = (".csv", ".json", ".txt")


def dataset_options(name: str) -> dict[str, Any]:
    """The options a dataset accepts with their defaults (``inspect.empty`` where none), the clip options'
    included (see :func:`ean.data.builder.variant_options`)."""
    return variant_options(name)


def data_identity(data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The data config as what it computes: every option the dataset takes, defaults filled in, less where
    the data lies and how fast it is read. Options the dataset does not take are left out."""
    name = data_cfg["dataset"]
    out: dict[str, Any] = {"dataset": name}
    for key, default in dataset_options(name).items():
        if key in LOCATION_KEYS or key in SPEED_KEYS:
            continue
        value = data_cfg.get(key)
        value = default if value is None else value
        if key in OMITTED_AT_DEFAULT and value == default:
            continue
        out[key] = None if value is inspect.Parameter.empty else _plain(value)
    return out


def data_fingerprint(data_cfg: dict[str, Any]) -> str:
    """Which data it is: the variant's own ``fingerprint`` (the synthetic generator's settings), else the names
    and contents of the annotation files (``*.csv``, ``*.json``, ``*.txt``) directly under the root.
    ``"sha256:<16 hex>"``."""
    name = data_cfg.get("dataset")
    own = getattr(DATASETS.get(name), "fingerprint", None) if name in DATASETS.names() else None
    if own is not None:
        return own(data_cfg)
    digest = hashlib.sha256(str(name).encode())
    root = Path(str(data_cfg.get("root", "")))
    note(root)
    for path in sorted(root.glob("*")) if root.is_dir() else []:
        if path.is_file() and path.suffix in ANNOTATION_SUFFIXES:
            note(path)
            digest.update(path.name.encode())
            digest.update(_file_digest(str(path), path.stat().st_mtime_ns, path.stat().st_size).encode())
    return "sha256:" + digest.hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_num_classes(data_cfg: dict[str, Any]) -> int:
    """The number of classes of the data a config reads (its annotations are parsed; nothing is decoded).

    A variant that knows its count without reading files says it (the synthetic dataset's setting).
    """
    own = getattr(DATASETS.get(data_cfg.get("dataset")), "num_classes", None)
    if own is not None:
        return own(data_cfg)
    return _num_classes(json.dumps(data_cfg, sort_keys=True, default=str), generation())


@functools.lru_cache(maxsize=64)
def _num_classes(data_json: str, recording: int) -> int:
    """The class count of a data config, memoised within one recording of the files read
    (``ean.files_read``): a new recording reads, and notes, the annotations again."""
    dataset = build_dataset({**json.loads(data_json), "decode_timeout_s": 0}, "val")
    try:
        return dataset.num_classes
    finally:
        close = getattr(dataset, "close", None)
        if close is not None:
            close()


def split_size(data_cfg: dict[str, Any], split: str) -> int:
    """How many videos ``split`` of the data has: its annotations counted when they are there, else the
    variant's ``videos(data_cfg, split)`` or ``VIDEOS`` (the official lists' sizes).

    Raises:
        DataError: none of these is known (a list_file dataset whose lists are not there).
    """
    variant = DATASETS.get(data_cfg["dataset"])
    if hasattr(variant, "videos"):
        return int(variant.videos(data_cfg, split))
    try:
        return len(build_dataset({**data_cfg, "decode_timeout_s": 0}, split))
    except (DataError, OSError):
        known = getattr(variant, "VIDEOS", {})
        if split in known:
            return int(known[split])
        raise DataError(
            f"{data_cfg['dataset']}: no annotations at {data_cfg.get('root')} to count its {split} videos"
        ) from None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
