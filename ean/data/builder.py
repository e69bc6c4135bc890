"""Config -> datasets and loaders: the only place in ``ean.data`` that reads a config.

``data_cfg`` is a plain dict. Keys (the clip keys and their defaults are :class:`ean.data.clip_options.ClipOptions`;
the loader's are ``LOADER_DEFAULTS``; every other key is the dataset variant's own, see its docstring):

==================== ========================================================================================
``dataset``          registry name: something_v1, something_v2, kinetics400, diving48, list_file, synthetic
``root``             data root (str); the dataset's files are found below it
``num_segments``     T, segments per clip (8 or 16)
``frames_per_segment`` L, consecutive frames per segment: 1 sparse, 5 dense (LMC input)
``resize``           working size before cropping: [H, W] (e.g. [240, 320]) or an int short side (256);
                     ``None``/absent: the dataset's default (240x320 for Something and synthetic, else 256)
``resize_at_decode`` decode videos at the working size when that shrinks them (True; a short side's size
                     needs the video's header, a fixed size is used without); False: crop the stored frames
``crop_size``        S, crop side (224)
``test_crop_size``   crop side at test time (default ``crop_size``; 256 for Kinetics' 3 crops)
``scales``           multi-scale crop scales ([1, .875, .75, .66])
``flip``             random horizontal flip in training, labels of mirrored classes swapped (bool)
``test_clips``       clips per video at test time (1; 2 for Diving48, 10 for Kinetics)
``test_crops``       crops per clip at test time: 1 (centre) or 3
``num_workers``      DataLoader worker processes (used by ``build_loader`` only)
``loader_timeout_s`` with workers, the DataLoader's ``timeout``: a batch not ready after this many seconds
                     raises RuntimeError ("DataLoader timed out"), so a hung worker fails the run instead of
                     stalling it (300; 0: wait for ever; used by ``build_loader`` only)
``max_bad_fraction`` stop with DataError when more than this fraction of the files is bad (0.01)
``decode_timeout_s`` give up on a video decode after this many seconds (30); 0 decodes in-process, no timeout
``decode_threads``   decord threads per worker for mp4 (1; webm always uses 1)
``media``            "video" or "frames" (frame folders from ``python -m ean.data.to_frames``); V2, K400, Diving48
``frames_root``      where those frame folders are (default ``<root>/frames``)
``image_tmpl``       frame file names ("{:05d}.jpg")
synthetic only       ``num_videos`` (100), ``num_classes`` (10), ``size`` (96), ``seed`` (0), ``min_frames``,
                     ``max_frames``
list_file only       ``train_list``, ``val_list``, ``class_names``
==================== ========================================================================================

A sample is ``(clip, label, index)``; the loader gives clips of shape (B, T, L, 3, S, S) in training and
(B, V, T, L, 3, S, S) at test when V = test_clips * test_crops > 1, uint8, in the clips' own memory layout
(:func:`ean.data.collate.collate_clips`; :func:`ean.data.normalize_clips` on the device makes the float input).
Call ``loader.sampler.set_epoch(epoch)`` each training epoch (it seeds the epoch's order and augmentation), and
``loader.dataset.bad_files.epoch_report()`` to report bad files.
"""

from __future__ import annotations

import inspect
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

import ean.data.datasets  # noqa: F401  (registers the datasets)
from ean.data.clip_dataset import ClipDataset
from ean.data.clip_options import ClipOptions, clip_dataset
from ean.data.collate import collate_clips
from ean.data.errors import DataError
from ean.data.global_batches import GlobalBatchSampler
from ean.data.readers.heap import keep_freed_memory
from ean.data.registry import DATASETS

#: The loader's keys (``build_loader``) and their defaults; the clip keys are :class:`ClipOptions`'.
LOADER_DEFAULTS: dict[str, Any] = {"num_workers": 2, "loader_timeout_s": 300.0}


def loader_problems(data_cfg: dict[str, Any]) -> list[str]:
    """What is wrong with the loader's keys of a data config (``num_workers``, ``loader_timeout_s``), each naming
    key, value and what is valid; checked at planning (``ean.trial.check_trial_config``) and by ``build_loader``."""
    problems = []
    workers = data_cfg.get("num_workers", LOADER_DEFAULTS["num_workers"])
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        problems.append(f"data.num_workers = {workers!r}; must be an integer >= 0 (0: load in the trial's process)")
    timeout = data_cfg.get("loader_timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0):
        problems.append(f"data.loader_timeout_s = {timeout!r}; must be a number >= 0 (0: no timeout)")
    return problems


LOADER_KEYS = tuple(LOADER_DEFAULTS)


def variant_options(name: str) -> dict[str, Any]:
    """The options of dataset ``name`` with their defaults (``inspect.empty`` where none): the clip options
    (with the variant's own defaults) and the variant's own, less ``root`` and ``split``."""
    variant = DATASETS.get(name)
    options = {**ClipOptions.defaults(), **getattr(variant, "CLIP_DEFAULTS", {})}
    for key, param in inspect.signature(variant).parameters.items():
        if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL) and key not in ("root", "split"):
            options[key] = param.default
    return options


def split_config(data_cfg: dict[str, Any]) -> tuple[str, dict[str, Any], ClipOptions]:
    """The registry name, the variant's own keyword arguments (``root`` included) and the clip options of a
    data config; DataError naming the known keys for a key the dataset does not take."""
    missing = [k for k in ("dataset", "root") if data_cfg.get(k) is None]
    if missing:
        raise DataError(
            f"data config lacks {missing}; it needs at least 'dataset' (one of {DATASETS.names()}) and 'root'"
        )
    name = data_cfg["dataset"]
    DATASETS.check(name)
    options, clip_keys = variant_options(name), set(ClipOptions.defaults())
    given = {k: v for k, v in data_cfg.items() if k not in LOADER_KEYS and k not in ("dataset", "root")}
    unknown = sorted(set(given) - set(options))
    if unknown:
        known = sorted({*options, *LOADER_KEYS, "dataset", "root"})
        raise DataError(f"data config for {name!r}: unknown keys {unknown}. Known keys: {', '.join(known)}")
    clip = {k: options[k] if given.get(k) is None else given[k] for k in clip_keys}
    own = {k: v for k, v in given.items() if k not in clip_keys and v is not None}
    return name, {"root": str(data_cfg["root"]), **own}, ClipOptions.from_config(clip)


def build_dataset(data_cfg: dict[str, Any], split: str) -> ClipDataset:
    """The clips of dataset ``data_cfg["dataset"]`` for ``split`` ("train" or "val")."""
    name, own, options = split_config(data_cfg)
    annotations = DATASETS.build(name, split=split, **own).read()
    return clip_dataset(annotations, split == "train", options)


def seed_worker(worker_id: int) -> None:
    """Sets up a DataLoader worker: seeds ``random`` and numpy from its torch seed (base seed + worker id) and
    tunes its heap for clip-sized buffers (:func:`ean.data.readers.heap.keep_freed_memory`)."""
    keep_freed_memory()
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_loader(
    data_cfg: dict[str, Any],
    split: str,
    batch_size: int,
    seed: int,
    distributed: bool = False,
    global_batch: int | None = None,
) -> DataLoader:
    """A DataLoader over ``build_dataset(data_cfg, split)``, reproducible for a given seed.

    Training shuffles into global batches of ``global_batch`` clips (default: ``batch_size`` on each device),
    the last incomplete one dropped, and hands this device its chunks of ``batch_size`` clips
    (:class:`ean.data.global_batches.GlobalBatchSampler`): the clips of every optimizer step, and each clip's
    augmentation, depend on the seed and the epoch only, not on the number of devices or of loader workers.
    Validation keeps the order and every video (``distributed``: a DistributedSampler's share). Call
    ``loader.sampler.set_epoch(epoch)`` each training epoch. With workers, a batch that takes longer than
    ``loader_timeout_s`` raises RuntimeError (a hung worker; without workers a hang is bounded only by the
    decoder process's ``decode_timeout_s``).
    """
    dataset = build_dataset(data_cfg, split)
    train = split == "train"
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if train:
        total = batch_size * world if global_batch is None else global_batch
        sampler = GlobalBatchSampler(len(dataset), total, batch_size, seed, rank=rank, world=world)
    else:
        sampler = DistributedSampler(dataset, shuffle=False) if distributed else SequentialSampler(dataset)
    problems = loader_problems(data_cfg)
    if problems:
        raise DataError("; ".join(problems))
    workers = int(data_cfg.get("num_workers", LOADER_DEFAULTS["num_workers"]))
    timeout = data_cfg.get("loader_timeout_s")
    timeout = float(LOADER_DEFAULTS["loader_timeout_s"] if timeout is None else timeout)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_clips,
        worker_init_fn=seed_worker,
        # The workers' base seed (clips take their randomness from the sampler's per-clip seeds, not from it).
        generator=torch.Generator().manual_seed(seed + 1),
        drop_last=False,  # training: the sampler yields whole global batches only
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        timeout=timeout if workers > 0 else 0,  # a DataLoader without workers takes no timeout
    )
