"""A resolved config -> everything one run needs: model, loaders, optimizer, schedule, scaler (a ``Run``).

Config sections: ``model`` (:mod:`ean.models.build`), ``data`` (:mod:`ean.data.builder`), ``trainer``
(:mod:`ean.train.config`) and a top-level ``seed`` (int, default 0). The data keys that describe the model's
input (``num_segments``, ``frames_per_segment``, ``crop_size``) are taken from the model when the data
section leaves them out, and must agree with it when it does not; ``model.num_classes`` must equal the
dataset's number of classes.

Seeding: Python, numpy and torch are seeded with ``seed`` before the model is built (so every rank builds
the same initial weights; DDP broadcasts rank 0's anyway), the loaders derive their order and augmentation
from ``seed`` (``ean.data.build_loader``), and the global torch generator is then reseeded per rank (dropout
masks differ between ranks, as they would between the clips of one large batch).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from ean.data import build_loader
from ean.models import build_model, frames_per_segment, resolve_model_config
from ean.train.config import TrainerConfigError, amp_dtype, device_batch, resolve_trainer_config
from ean.train.distributed import is_distributed, rank, world_size, wrap_ddp
from ean.train.optim import build_optimizer, build_scheduler
from ean.train.runtime import make_scaler, prepare_model

CONFIG_SECTIONS = ("model", "data", "trainer", "seed")


@dataclass
class Run:
    """The state of one training run (one rank's share of it under DDP).

    Attributes:
        config: the resolved config (model, data with the model's input keys filled in, trainer, seed).
        device: the training device.
        model: the network, DDP-wrapped under a process group of several ranks.
        net: the network itself (what checkpoints hold).
        train_loader: shuffled training clips (B, T, L, 3, S, S).
        val_loader: one clip x one crop per video, for the evaluation after epochs.
        test_loader: the data config's protocol (``test_clips`` x ``test_crops``); ``val_loader`` when 1 x 1.
        optimizer, scheduler, scaler: SGD, the per-step schedule, the fp16 GradScaler (disabled otherwise).
        amp_dtype: autocast dtype or None.
        steps_per_epoch: optimizer steps in one epoch.
        accumulation: forward passes of ``per_device_batch`` clips per optimizer step on each device.
        epoch: epochs completed.
        global_step: optimizer steps taken.
        history: the metrics of every completed epoch.
        rng: generator states at the end of the last completed epoch (restored when the next one starts).
    """

    config: dict[str, Any]
    device: torch.device
    model: nn.Module
    net: nn.Module
    train_loader: DataLoader
    val_loader: DataLoader
    test_loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    steps_per_epoch: int
    accumulation: int = 1
    epoch: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    rng: dict[str, Any] | None = None

    @property
    def trainer(self) -> dict[str, Any]:
        return self.config["trainer"]


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validates a whole config and fills defaults; returns a new dict with sections model, data, trainer, seed."""
    unknown = sorted(set(config) - set(CONFIG_SECTIONS))
    if unknown:
        raise TrainerConfigError(f"unknown config section(s) {unknown}; a run config has {list(CONFIG_SECTIONS)}")
    if "data" not in config:
        raise TrainerConfigError("the config has no 'data' section (see ean.data.builder for its keys)")
    seed = config.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TrainerConfigError(f"seed = {seed!r}; must be an integer")
    model = resolve_model_config(config.get("model", {}))
    data = _data_for_model(dict(copy.deepcopy(config["data"])), model)
    return {"model": model, "data": data, "trainer": resolve_trainer_config(config), "seed": seed}


def model_data_keys(model: dict[str, Any]) -> dict[str, Any]:
    """The data keys a resolved model config decides: ``num_segments``, ``frames_per_segment``, ``crop_size``."""
    return {
        "num_segments": model["num_segments"],
        "frames_per_segment": frames_per_segment(model),
        "crop_size": model["input_size"],
    }


def _data_for_model(data: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    for key, value in model_data_keys(model).items():
        if data.get(key) is None:
            data[key] = value
        elif data[key] != value:
            source = "model.input_size" if key == "crop_size" else f"the model ({model['modality']})"
            raise TrainerConfigError(f"data.{key} = {data[key]!r} but {source} needs {value!r}")
    return data


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_loaders(config: dict[str, Any], batch: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Training, per-epoch validation (1 clip x 1 crop) and protocol test loaders of a resolved config, each
    giving batches of ``batch`` clips (the per-device batch); the training loader deals out global batches of
    ``trainer.batch_size`` clips (``ean.data.global_batches``)."""
    data, seed = config["data"], config["seed"]
    distributed = is_distributed()
    global_batch = config["trainer"]["batch_size"]
    train = build_loader(data, "train", batch, seed, distributed=distributed, global_batch=global_batch)
    single_view = {**data, "test_clips": 1, "test_crops": 1}
    val = build_loader(single_view, "val", batch, seed, distributed=distributed)
    views = int(data.get("test_clips") or 1) * int(data.get("test_crops") or 1)
    test = val if views == 1 else build_loader(data, "val", batch, seed, distributed=distributed)
    return train, val, test


def _check_classes(model_cfg: dict[str, Any], loader: DataLoader, data: dict[str, Any]) -> None:
    found = loader.dataset.num_classes
    if model_cfg["num_classes"] != found:
        raise TrainerConfigError(
            f"model.num_classes = {model_cfg['num_classes']} but dataset {data['dataset']!r} at {data['root']!r} "
            f"has {found} classes; set model.num_classes: {found}"
        )


def build_run(config: dict[str, Any], device: torch.device) -> Run:
    """Builds a fresh run (epoch 0) from a config resolved by ``resolve_config``."""
    trainer, seed = config["trainer"], config["seed"]
    per_device, accumulation = device_batch(trainer, world_size())
    seed_everything(seed)
    net = build_model(config["model"])
    train, val, test = build_loaders(config, per_device)
    _check_classes(config["model"], train, config["data"])
    net = prepare_model(net, trainer, device, is_distributed())
    model = wrap_ddp(net, device)
    steps = len(train) // accumulation
    if steps == 0:
        raise TrainerConfigError(
            f"one optimizer step takes {accumulation} batches of {per_device} clips per device, but the training "
            f"loader gives {len(train)}: the training set is smaller than the global batch {trainer['batch_size']}"
        )
    steps = min(steps, trainer["max_steps_per_epoch"] or steps)
    optimizer = build_optimizer(model, trainer)
    dtype = amp_dtype(trainer, device)
    torch.manual_seed(seed * 1_000_003 + rank())
    return Run(
        config=config,
        device=device,
        model=model,
        net=net,
        train_loader=train,
        val_loader=val,
        test_loader=test,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, trainer, steps),
        scaler=make_scaler(device, dtype),
        amp_dtype=dtype,
        steps_per_epoch=steps,
        accumulation=accumulation,
    )


def close_run(run: Run) -> None:
    """Stops the datasets' decoder processes (they would also stop when the process exits)."""
    for loader in {id(x): x for x in (run.train_loader, run.val_loader, run.test_loader)}.values():
        close = getattr(loader.dataset, "close", None)
        if close is not None:
            close()
