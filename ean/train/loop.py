"""One training epoch: forward, loss, finiteness check, backward, clipping, optimizer and schedule steps.

Dataflow of one step::

    uint8 clips (B, T, L, 3, S, S) -> device -> normalize_clips -> model (autocast) -> logits (B, K)
      -> cross-entropy (fp32)
      -> all ranks agree the loss is finite (else NonFiniteLossError) -> backward (DDP averages gradients)
      -> [unscale] -> clip global grad norm -> optimizer step (GradScaler for fp16) -> schedule step

Metrics are sums over every rank's clips, reduced once at the end of the epoch, so a DDP run reports
the same numbers as one process on the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ean.data.transforms import normalize_clips
from ean.train.distributed import all_reduce, rank, world_size
from ean.train.errors import NonFiniteLossError
from ean.train.metrics import Stopwatch, topk_correct
from ean.train.optim import current_lr
from ean.train.runtime import autocast, set_train_mode


def train_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    *,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    clip_grad: float | None = None,
    max_steps: int | None = None,
    batchnorm: str = "train",
) -> dict[str, float]:
    """Trains ``model`` for one pass over ``loader`` (or ``max_steps`` steps).

    Args:
        model: the network, or its DDP wrapper; takes (B, T, L, 3, S, S) to logits (B, K).
        loader: yields ``(clips, labels, video_index)`` with clips (B, T, L, 3, S, S) and labels (B,); uint8
            clips are normalised on ``device`` (:func:`ean.data.normalize_clips`), float ones used as they are.
        optimizer: steps once per batch.
        scheduler: per-step learning-rate schedule, stepped after each optimizer step.
        device: where the model is.
        epoch: 1-based epoch number (for error messages).
        scaler: a GradScaler (enabled for fp16 only); None for none.
        amp_dtype: autocast dtype, or None for fp32.
        clip_grad: max global L2 norm of the gradients, or None.
        max_steps: stop after this many steps (None: the whole loader).
        batchnorm: ``"frozen"`` keeps BatchNorm layers in eval mode (see ``ean.train.config``).

    Returns:
        ``train_loss`` (mean cross-entropy per clip), ``train_top1`` (percent), ``lr`` (of the last step),
        ``clips_per_s`` (all ranks' clips over this epoch's wall time, data loading included), ``steps``,
        ``clips`` (all ranks), ``seconds`` (wall time of the epoch).
    """
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    set_train_mode(model, batchnorm)
    params = [p for p in model.parameters() if p.requires_grad]
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss * clips, top-1 hits, clips
    watch, lr, steps = Stopwatch(device), current_lr(optimizer), 0
    for steps, (clips, labels, _) in enumerate(loader, start=1):
        clips = normalize_clips(clips.to(device, non_blocking=True))
        labels = labels.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            logits = model(clips)
        loss = F.cross_entropy(logits.float(), labels)
        _check_finite(loss, device, epoch, steps)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip_grad:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        scaler.step(optimizer)
        scaler.update()
        lr = current_lr(optimizer)
        scheduler.step()
        (hits,) = topk_correct(logits.detach().float(), labels, (1,))
        sums += torch.stack([loss.detach().double() * len(labels), sums.new_tensor(hits), sums.new_tensor(len(labels))])
        if max_steps and steps >= max_steps:
            break
    return _epoch_metrics(all_reduce(sums, device), lr, steps, watch.elapsed())


def _check_finite(loss: torch.Tensor, device: torch.device, epoch: int, step: int) -> None:
    """Raises NonFiniteLossError on every rank when the loss of any rank is NaN or infinite."""
    local = loss.detach().double().reshape(1)
    if torch.isfinite(all_reduce(local.clone(), device)).all():
        return
    value = float(local.item())
    detail = f" (rank {rank()} of {world_size()})" if world_size() > 1 else ""
    if world_size() > 1 and torch.isfinite(local).all():
        detail = f" (finite {value:.4g} on rank {rank()}; another of the {world_size()} ranks diverged)"
    raise NonFiniteLossError(epoch, step, value, detail)


def _epoch_metrics(sums: torch.Tensor, lr: float, steps: int, seconds: float) -> dict[str, Any]:
    loss_sum, hits, clips = sums.tolist()
    if clips == 0:
        raise RuntimeError("the training loader yielded no batch: fewer training videos than one batch?")
    return {
        "train_loss": loss_sum / clips,
        "train_top1": 100.0 * hits / clips,
        "lr": lr,
        "clips_per_s": clips / max(seconds, 1e-9),
        "steps": steps,
        "clips": int(clips),
        "seconds": seconds,
    }
