"""Process-wide settings of one run and the model's placement: threads, determinism, device, memory
format, BatchNorm mode.

``run_settings`` changes global torch state (threads, deterministic algorithms, cuDNN flags) for the
duration of a ``with`` block and restores it afterwards, so a notebook or a test that calls ``fit`` twice
is left as it was. A run in float32 on CUDA (``amp`` none) has cuDNN's TF32 convolutions off (torch's default
is on), so that it computes in the precision its recipe and key say.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ean.train.config import TrainerConfigError, resolved_amp, use_channels_last

log = logging.getLogger("ean.train")

DETERMINISM_COST = (
    "deterministic mode: deterministic kernels only, cuDNN benchmark off; no measurable cost on CPU, on CUDA "
    "the loss of cuDNN autotuning and slower deterministic kernels (ops without one only warn)"
)


@contextlib.contextmanager
def run_settings(cfg: dict[str, Any], device: torch.device) -> Iterator[None]:
    """Applies ``num_threads``, ``deterministic`` and (on CUDA) ``amp``'s float32 of a resolved trainer config
    inside the block.

    Args:
        cfg: a resolved trainer config.
        device: the training device (cuBLAS needs a workspace setting for determinism on CUDA).
    """
    saved = (
        torch.get_num_threads(),
        *_deterministic_mode(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    try:
        if cfg["num_threads"]:
            torch.set_num_threads(cfg["num_threads"])
        _set_determinism(cfg["deterministic"], device)
        with _float32_convolutions(device.type == "cuda" and resolved_amp(cfg["amp"], device.type) == "none"):
            yield
    finally:
        torch.set_num_threads(saved[0])
        if _deterministic_mode() != saved[1:3]:  # the call imports torch._inductor (1.8 s of CPU): only if it changed
            torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[3], saved[4]


@contextlib.contextmanager
def _float32_convolutions(active: bool) -> Iterator[None]:
    """cuDNN's convolutions and RNNs in IEEE float32 inside the block when ``active`` (torch's default is TF32),
    then as they were. torch 2.14 keeps a legacy flag (``cudnn.allow_tf32``) beside per-operator settings
    (``cudnn.conv.fp32_precision``) and refuses to read the legacy one once they disagree: both are set, the
    legacy one first, and each restored as it was (the legacy one only if it could be read). Matrix products
    are left as the process has them (IEEE unless it asked for TF32)."""
    if not active:
        yield
        return
    cudnn = torch.backends.cudnn
    try:
        legacy = cudnn.allow_tf32
    except RuntimeError:  # the process set the per-operator flags apart
        legacy = None
    saved = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision)
    cudnn.allow_tf32 = False
    cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = "ieee"
    try:
        yield
    finally:
        if legacy is not None:
            cudnn.allow_tf32 = legacy
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = saved


def _deterministic_mode() -> tuple[bool, bool]:
    """(deterministic algorithms on, warn only) of this process."""
    return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()


def _set_determinism(enabled: bool, device: torch.device) -> None:
    if enabled:
        log.info(DETERMINISM_COST)
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled and device.type == "cuda"


def to_channels_last(model: nn.Module) -> nn.Module:
    """Stores every 4-D parameter (2-D convolution weights) as channels_last, in place.

    Convolutions then produce channels_last outputs from the (N*T, 3, H, W) frames the backbone makes;
    3-D convolution weights (the EAB's) keep their layout.
    """
    for param in model.parameters():
        if param.dim() == 4:
            param.data = param.data.contiguous(memory_format=torch.channels_last)
    return model


def prepare_model(model: nn.Module, cfg: dict[str, Any], device: torch.device, distributed: bool) -> nn.Module:
    """Moves the model to ``device``, in channels_last and with SyncBatchNorm when the config asks.

    Args:
        model: the network as built (on CPU).
        cfg: a resolved trainer config (``channels_last``, ``batchnorm``).
        device: the training device.
        distributed: whether a process group of several ranks exists.
    """
    if cfg["batchnorm"] == "sync":
        if device.type != "cuda":
            raise TrainerConfigError("trainer.batchnorm = 'sync' needs CUDA (SyncBatchNorm has no CPU kernel)")
        if distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if use_channels_last(cfg, device):
        to_channels_last(model)
    return model


def set_train_mode(model: nn.Module, batchnorm: str) -> None:
    """``model.train()``, with every BatchNorm kept in eval mode when ``batchnorm`` is ``"frozen"``."""
    model.train()
    if batchnorm == "frozen":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision in ``dtype`` on ``device``'s type (a no-op context when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler, enabled for fp16 only (bf16 and fp32 need no loss scaling)."""
    return torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
