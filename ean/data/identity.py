"""What a data config reads, as data: its identity (for trial keys), its fingerprint and its class count.

A data config says what the clips are (dataset, sampling, augmentation, protocol) and where and how fast
they are read (root, loader workers, decoder threads and timeouts). The identity keeps the first and drops
the second, so a clone at another path, data moved elsewhere, or more loader workers name the same clips.
The fingerprint says which data it is: what the annotations say (the classes, each video and its label, or the
synthetic generator's settings), and for frame folders how ``ean.data.to_frames`` made them (its manifest:
short side, JPEG quality), never where their files lie.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from typing import Any

from ean.data.annotations import Annotations
from ean.data.builder import LOADER_KEYS, build_dataset, split_config, variant_options
from ean.data.errors import DataError
from ean.data.layout import frames_manifest
from ean.data.registry import DATASETS
from ean.files_read import memo_while_unchanged, note

#: Keys that say where the data lies.
LOCATION_KEYS = ("root", "frames_root")
#: Keys that say how fast it is read, not what is read.
SPEED_KEYS = (*LOADER_KEYS, "decode_timeout_s", "decode_threads")
#: Keys that decide whether a run stops, never what a run that finishes computed (bad files are skipped alike).
FAILURE_KEYS = ("max_bad_fraction",)
#: Options added after trial keys were first published: named in the identity only when not at their default,
#: so that the keys of every run made before they existed stand.
OMITTED_AT_DEFAULT = ("flip_rule",)
#: The splits whose annotations fingerprint a dataset.
SPLITS = ("train", "val")


def dataset_options(name: str) -> dict[str, Any]:
    """The options a dataset accepts with their defaults (``inspect.empty`` where none), the clip options'
    included (see :func:`ean.data.builder.variant_options`)."""
    return variant_options(name)


def data_identity(data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The data config as what it computes: every option the dataset takes, defaults filled in (the test crop
    as the training crop when it is not given), less where the data lies, how fast it is read and when a run
    gives up (a dataset's own ``LOCATION_OPTIONS`` too: list files whose contents the fingerprint holds). Options
    the dataset does not take are left out."""
    name = data_cfg["dataset"]
    out: dict[str, Any] = {"dataset": name}
    locations = (*LOCATION_KEYS, *getattr(DATASETS.get(name), "LOCATION_OPTIONS", ()))
    for key, default in dataset_options(name).items():
        if key in locations or key in SPEED_KEYS or key in FAILURE_KEYS:
            continue
        value = data_cfg.get(key)
        value = default if value is None else value
        if key in OMITTED_AT_DEFAULT and value == default:
            continue
        out[key] = None if value is inspect.Parameter.empty else _plain(value)
    if "test_crop_size" in out and out["test_crop_size"] is None:
        out["test_crop_size"] = out.get("crop_size")
    if out.get("flip") is False:  # no flip: how a flip labels a mirrored class is never asked
        out.pop("flip_rule", None)
    return out


def data_fingerprint(data_cfg: dict[str, Any]) -> str:
    """Which data it is: the variant's own ``fingerprint`` (the synthetic generator's settings), else what the
    annotations of both splits say (:func:`annotations_digest`), whichever files and folders they were read
    from; a dataset whose annotations are not there is named by its name and the options that choose among its
    annotation files (a list_file's lists), not by where it lies. ``"sha256:<16 hex>"``.

    Raises:
        DataError: a data root whose annotations cannot be read (a file missing or malformed), naming the split.
    """
    name = data_cfg.get("dataset")
    own = getattr(DATASETS.get(name), "fingerprint", None) if name in DATASETS.names() else None
    if own is not None:
        return own(data_cfg)
    try:
        name, options, _ = split_config(data_cfg)
    except DataError:  # no root, or keys the dataset does not take: the checks of the config say so
        return _named(str(name))
    return _fingerprint(json.dumps([name, options], sort_keys=True, default=str))


def _named(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()[:16]


@memo_while_unchanged
def _fingerprint(variant_json: str) -> str:
    """The fingerprint of a dataset's own options (``[name, options]`` as JSON), memoised while the files it
    read are as they were."""
    name, options = json.loads(variant_json)
    digest = hashlib.sha256(name.encode())
    note(options["root"])  # a root that appears or goes changes the fingerprint
    for split in SPLITS:
        try:
            variant = DATASETS.build(name, split=split, **options)
            annotations = variant.read()
        except Exception as err:  # noqa: BLE001  a parser's own error too: a malformed file
            if not os.path.isdir(options["root"]):
                # The data is not there (a plan made elsewhere, to estimate its cost): named by the dataset and
                # the options that say which of its annotations to read (a list_file's lists), not where it lies.
                which = {k: v for k, v in options.items() if k not in LOCATION_KEYS}
                return _named(json.dumps([name, which], sort_keys=True, default=str))
            raise DataError(
                f"{name}: the {split} annotations under {options['root']} cannot be read ({type(err).__name__}: {err})"
            ) from None
        frames_root = getattr(variant, "frames_root", None)
        digest.update(annotations_digest(annotations, options["root"], frames_root))
        if frames_root and any(r.media == "frames" for r in annotations.records):
            made = frames_manifest(frames_root)  # another extraction (short side, quality): other pixels
            digest.update(json.dumps(made, sort_keys=True).encode() if made else b"")
    return "sha256:" + digest.hexdigest()[:16]


def annotations_digest(annotations: Annotations, root: str, frames_root: str | None = None) -> bytes:
    """The SHA-256 of a split's annotations as data: its class names and, in order, each video's path relative
    to the root (to ``frames_root`` for frame folders kept there; as listed when a list names it outside the
    root), its label and its media."""
    rows = [(_relative(r.path, frames_root if r.media == "frames" and frames_root else root), r.label, r.media)
            for r in annotations.records]  # fmt: skip
    return hashlib.sha256(json.dumps([list(annotations.class_names), rows]).encode()).digest()


def _relative(path: str, base: str) -> str:
    relative = os.path.relpath(path, base)
    return os.path.normpath(path) if relative.startswith("..") else relative


def dataset_num_classes(data_cfg: dict[str, Any]) -> int:
    """The number of classes of the data a config reads (its annotations are parsed; nothing is decoded).

    A variant that knows its count without reading files says it (the synthetic dataset's setting).
    """
    own = getattr(DATASETS.get(data_cfg.get("dataset")), "num_classes", None)
    if own is not None:
        return own(data_cfg)
    return _num_classes(json.dumps(data_cfg, sort_keys=True, default=str))


@memo_while_unchanged
def _num_classes(data_json: str) -> int:
    """The class count of a data config, memoised while the annotations it read are as they were."""
    dataset = build_dataset({**json.loads(data_json), "decode_timeout_s": 0}, "val")
    try:
        return dataset.num_classes
    finally:
        close = getattr(dataset, "close", None)
        if close is not None:
            close()


def split_size(data_cfg: dict[str, Any], split: str) -> int:
    """How many videos ``split`` of the data has: its annotations counted when they are there, else the
    variant's ``videos(data_cfg, split)`` or its official lists' sizes (``official_videos(data_cfg)`` or
    ``VIDEOS``).

    Raises:
        DataError: none of these is known (a list_file dataset whose lists are not there).
    """
    variant = DATASETS.get(data_cfg["dataset"])
    if hasattr(variant, "videos"):
        return int(variant.videos(data_cfg, split))
    try:
        return len(build_dataset({**data_cfg, "decode_timeout_s": 0}, split))
    except (DataError, OSError):
        official = getattr(variant, "official_videos", None)
        known = official(data_cfg) if official else getattr(variant, "VIDEOS", {})
        if split in known:
            return int(known[split])
        raise DataError(
            f"{data_cfg['dataset']}: no annotations at {data_cfg.get('root')} to count its {split} videos"
        ) from None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
