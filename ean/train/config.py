"""The ``trainer`` section of a resolved config: defaults (the paper's recipe), validation, device choices.

A resolved config is a plain dict with sections ``model`` (:mod:`ean.models.build`), ``data``
(:mod:`ean.data.builder`), ``trainer`` (here) and a top-level ``seed`` (int). Every trainer key has a
default; an unknown key is an error naming the closest valid one.

Keys:
    epochs: epochs to train (70).
    batch_size: the global batch: clips per optimizer step over all devices (64: the paper's 8 GPUs x 8 clips).
    per_device_batch: clips per device and forward pass (8, as in the paper; BatchNorm statistics are per
        device), or None for ``batch_size`` / devices. With fewer devices than ``batch_size`` /
        ``per_device_batch`` the gradients of several forward passes are accumulated
        (``accumulation``), so 1, 2, 4 or 8 devices train the same recipe.
    lr: base learning rate (0.01, for the global batch of 64; not rescaled automatically).
    momentum: SGD momentum (0.9).
    weight_decay: L2 weight decay (5e-4; 1e-4 for Kinetics, set by its data config).
    param_groups: ``"tsn"`` (the authors' policy: convolution and linear weights lr x1 with decay; their
        biases lr x2 without decay; normalisation scales and shifts lr x1 without decay; any other parameter,
        e.g. the SOI-Tr's positional embedding, lr x1 with decay) or ``"uniform"`` (lr x1 and decay for all).
    schedule: ``"step"`` (x ``lr_gamma`` at each epoch of ``lr_steps``) or ``"cosine"`` (to 0 at ``epochs``).
    lr_steps: 0-based epoch indices from which the lr is multiplied once more by ``lr_gamma``, as in the
        authors' code: ``[41, 51, 61]`` decays after 41, 51 and 61 completed epochs.
    lr_gamma: the step factor (0.1).
    warmup_epochs: linear warm-up from ``lr / warmup_steps`` to ``lr``, per step (0: none).
    clip_grad: max global L2 norm of the gradients (20), or None for no clipping.
    amp: ``"auto"`` (bf16 on CUDA, none on CPU), ``"bf16"``, ``"fp16"`` (CUDA only, with a GradScaler) or
        ``"none"``.
    channels_last: ``"auto"`` (on) or a bool; converts the 4-D convolution weights, so that every convolution
        runs channels-last (on CPU too: a ResNet-50 TSN step 0.79x, EAN 8F RGB+LMC 0.93x of NCHW; figures:
        benchmarks/RESULTS.md, section "Model training step").
    deterministic: deterministic kernels (``torch.use_deterministic_algorithms``), cuDNN autotuning off.
        Cost: on CPU none measurable (see benchmarks/RESULTS.md, "Training"); on CUDA cuDNN's benchmark
        mode is lost and ops without a deterministic kernel (3-D max-pool backward in the EAB) only warn.
    device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    eval_every: validate (one clip, centre crop) every this many epochs and after the last (1).
    checkpoint_every: write ``checkpoints/last.pt`` every this many epochs and after the last (1).
    max_steps_per_epoch: None, or at most this many steps per epoch (smoke runs).
    num_threads: None, or ``torch.set_num_threads`` for the run (restored afterwards).
    batchnorm: ``"train"`` (per-device batch statistics, as the authors), ``"frozen"`` (every BatchNorm uses
        and keeps its running statistics; its affine parameters still learn; then DDP equals one process on
        the global batch exactly) or ``"sync"`` (SyncBatchNorm across DDP ranks; CUDA only).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ean.config_keys import check_known_keys

TRAINER_DEFAULTS: dict[str, Any] = {
    "epochs": 70,
    "batch_size": 64,
    "per_device_batch": 8,
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "param_groups": "tsn",
    "schedule": "step",
    "lr_steps": [41, 51, 61],
    "lr_gamma": 0.1,
    "warmup_epochs": 0,
    "clip_grad": 20.0,
    "amp": "auto",
    "channels_last": "auto",
    "deterministic": False,
    "device": "auto",
    "eval_every": 1,
    "checkpoint_every": 1,
    "max_steps_per_epoch": None,
    "num_threads": None,
    "batchnorm": "train",
}
CHOICES = {
    "schedule": ("step", "cosine"),
    "amp": ("auto", "bf16", "fp16", "none"),
    "device": ("auto", "cpu", "cuda"),
    "batchnorm": ("train", "frozen", "sync"),
    "param_groups": ("tsn", "uniform"),
}


class TrainerConfigError(ValueError):
    """A trainer config that cannot be used; the message names the key, the value and the valid choices."""


def resolve_trainer_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fills defaults and validates the trainer section; returns a new dict (the input is not changed).

    Args:
        config: a resolved config (its ``trainer`` section; absent: all defaults), or the trainer section.
    """
    whole = "trainer" in config or bool({"model", "data", "seed"} & set(config))
    section = (config.get("trainer") or {}) if whole else config
    check_known_keys("trainer", section, TRAINER_DEFAULTS, TrainerConfigError)
    cfg = copy.deepcopy(TRAINER_DEFAULTS)
    cfg.update(copy.deepcopy(dict(section)))
    _validate(cfg)
    return cfg


def _fail(key: str, value: Any, expected: str) -> None:
    raise TrainerConfigError(f"trainer.{key} = {value!r}; {expected}")


def _validate(cfg: dict[str, Any]) -> None:
    for key, choices in CHOICES.items():
        if cfg[key] not in choices:
            _fail(key, cfg[key], f"valid: {', '.join(choices)}")
    for key in ("epochs", "batch_size", "eval_every", "checkpoint_every"):
        if not _is_int(cfg[key]) or cfg[key] < 1:
            _fail(key, cfg[key], "must be a positive integer")
    for key in ("max_steps_per_epoch", "num_threads", "per_device_batch"):
        if cfg[key] is not None and (not _is_int(cfg[key]) or cfg[key] < 1):
            _fail(key, cfg[key], "must be null or a positive integer")
    for key in ("lr", "momentum", "weight_decay", "lr_gamma", "warmup_epochs"):
        if not _is_number(cfg[key]) or cfg[key] < 0:
            _fail(key, cfg[key], "must be a number >= 0")
    if cfg["clip_grad"] is not None and (not _is_number(cfg["clip_grad"]) or cfg["clip_grad"] <= 0):
        _fail("clip_grad", cfg["clip_grad"], "must be null or a number > 0")
    steps = cfg["lr_steps"]
    if not isinstance(steps, list | tuple) or not all(_is_int(s) and s >= 0 for s in steps):
        _fail("lr_steps", steps, "must be a list of epoch indices >= 0")
    cfg["lr_steps"] = sorted(int(s) for s in steps)
    if not isinstance(cfg["channels_last"], bool) and cfg["channels_last"] != "auto":
        _fail("channels_last", cfg["channels_last"], "must be 'auto', true or false")
    if not isinstance(cfg["deterministic"], bool):
        _fail("deterministic", cfg["deterministic"], "must be true or false")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def device_batch(cfg: dict[str, Any], devices: int) -> tuple[int, int]:
    """Clips per device and forward pass, and forward passes per optimizer step, for ``devices`` devices.

    Args:
        cfg: a resolved trainer config (``batch_size`` is the global batch).
        devices: the devices (DDP ranks) that carry the batch.

    Raises:
        TrainerConfigError: the global batch cannot be split evenly (the message lists the device counts that can).
    """
    total, per_device = cfg["batch_size"], cfg["per_device_batch"]
    if per_device is None:
        per_device = total // devices if total % devices == 0 else 0
    if per_device < 1 or total % (per_device * devices):
        per = per_device or "an equal share of"
        fits = [n for n in (1, 2, 4, 8, 16, 32) if total % (n * (cfg["per_device_batch"] or 1)) == 0]
        raise TrainerConfigError(
            f"trainer.batch_size = {total} (the global batch) cannot be carried by {devices} device(s) of {per} "
            f"clips: {devices} x per_device_batch must divide it. Device counts that can: {fits or 'none'}"
        )
    return per_device, total // (per_device * devices)


def resolve_device(cfg: dict[str, Any]) -> torch.device:
    """The device a trainer config asks for (``auto``: CUDA when available); under torch.distributed on
    CUDA, the current CUDA device (the launcher, e.g. Ray Train, sets it per rank)."""
    wanted = device_type(cfg["device"])
    if wanted == "cuda":
        if not torch.cuda.is_available():
            raise TrainerConfigError("trainer.device = 'cuda' but no CUDA device is available")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def device_type(wanted: str) -> str:
    """``"cpu"`` or ``"cuda"``: the kind of device a trainer's ``device`` gives in this process (``auto``: CUDA
    when available)."""
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def resolved_amp(amp: str, kind: str) -> str:
    """The precision a trainer's ``amp`` computes in on a device of ``kind``: ``"bf16"``, ``"fp16"`` or
    ``"none"`` (``auto`` is bf16 on CUDA and none on CPU)."""
    if amp == "auto":
        return "bf16" if kind == "cuda" else "none"
    return amp


def amp_dtype(cfg: dict[str, Any], device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full fp32): ``auto`` is bf16 on CUDA and none on CPU."""
    amp = resolved_amp(cfg["amp"], device.type)
    if amp == "fp16" and device.type != "cuda":
        raise TrainerConfigError("trainer.amp = 'fp16' needs CUDA; use 'bf16' or 'none' on CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[amp]


def use_channels_last(cfg: dict[str, Any], device: torch.device) -> bool:
    """Whether to convert the model to channels_last (``auto``: yes, faster on CPU and on CUDA alike).

    ``device`` stays in the signature beside ``amp_dtype``'s: today the answer is the same on every device.
    """
    del device
    return cfg["channels_last"] in ("auto", True)
