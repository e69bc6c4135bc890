"""One training epoch: forward, loss, finiteness check, backward, clipping, optimizer and schedule steps.

Dataflow of one optimizer step (A = ``accumulation`` forward passes of B clips on each of W devices: the
global batch is A x B x W clips)::

    A times: uint8 clips (B, T, L, 3, S, S) -> device -> normalize_clips -> model (autocast) -> logits (B, K)
      -> cross-entropy (fp32) -> all ranks agree the loss is finite (else NonFiniteLossError)
      -> backward of loss / A (gradients add up; DDP averages them over the ranks on the A-th pass only)
    -> [unscale] -> clip global grad norm -> optimizer step (GradScaler for fp16) -> schedule step

The gradient is the mean over the global batch's clips whatever A and W are (BatchNorm statistics are per
forward pass of B clips, as in the paper's per-GPU BatchNorm). With the training loader's global batches
(:mod:`ean.data.global_batches`) and ``seed``, every pass of B clips is the same whatever W is: the same clips,
augmentation and dropout masks; on W ranks, BatchNorm's running averages are merged after each round of passes
into those of one device (:mod:`ean.train.running_stats`).

Metrics are sums over every rank's clips, reduced once at the end of the epoch, so a DDP run reports
the same numbers as one process on the same global batch.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ean.data.global_batches import chunk_seed
from ean.data.transforms import normalize_clips
from ean.train.distributed import all_gather_stacked, all_reduce, rank, world_size
from ean.train.errors import NonFiniteLossError
from ean.train.metrics import Stopwatch, topk_correct
from ean.train.optim import current_lr
from ean.train.running_stats import PassOrderRunningStats
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
    accumulation: int = 1,
    seed: int | None = None,
) -> dict[str, float]:
    """Trains ``model`` for one pass over ``loader`` (or ``max_steps`` optimizer steps).

    Args:
        model: the network, or its DDP wrapper; takes (B, T, L, 3, S, S) to logits (B, K).
        loader: yields ``(clips, labels, video_index)`` with clips (B, T, L, 3, S, S) and labels (B,); uint8
            clips are normalised on ``device`` (:func:`ean.data.normalize_clips`), float ones used as they are.
        optimizer: steps once per ``accumulation`` batches.
        scheduler: per-step learning-rate schedule, stepped after each optimizer step.
        device: where the model is.
        epoch: 1-based epoch number (for error messages).
        scaler: a GradScaler (enabled for fp16 only); None for none.
        amp_dtype: autocast dtype, or None for fp32.
        clip_grad: max global L2 norm of the gradients, or None.
        max_steps: stop after this many optimizer steps (None: the whole loader).
        batchnorm: ``"frozen"`` keeps BatchNorm layers in eval mode (see ``ean.train.config``).
        accumulation: batches whose gradients make one optimizer step; a last incomplete group is dropped.
        seed: the trial's seed: each forward pass then draws its randomness (dropout) from a seed of its own
            chunk of the epoch (:func:`ean.data.global_batches.chunk_seed`; chunk = pass x ranks + rank, the
            numbering of ``GlobalBatchSampler``), so it does not depend on the number of devices; None: from
            torch's global generator as it stands.

    Returns:
        ``train_loss`` (mean cross-entropy per clip), ``train_top1`` (percent), ``lr`` (of the last step),
        ``clips_per_s`` (all ranks' clips over this epoch's wall time, data loading included), ``steps``
        (optimizer steps),
        ``clips`` (all ranks), ``seconds`` (wall time of the epoch).
    """
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    set_train_mode(model, batchnorm)
    running_stats = PassOrderRunningStats(model, world_size(), lambda state: all_gather_stacked(state, device))
    params = [p for p in model.parameters() if p.requires_grad]
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss * clips, top-1 hits, clips
    watch, lr, steps = Stopwatch(device), current_lr(optimizer), 0
    micro = 0
    optimizer.zero_grad(set_to_none=True)
    for clips, labels, _ in itertools.islice(loader, _usable_batches(loader, accumulation, max_steps)):
        if seed is not None:
            torch.manual_seed(chunk_seed(seed, epoch - 1, micro * world_size() + rank()))
        micro += 1
        last = micro % accumulation == 0
        running_stats.before_pass()
        with _sync_on(model, last):
            logits, loss = _forward_backward(model, clips, labels, device, amp_dtype, scaler, accumulation)
        running_stats.after_pass()
        _check_finite(loss, device, epoch, steps + 1)
        (hits,) = topk_correct(logits.detach().float(), labels.to(device), (1,))
        sums += torch.stack([loss.detach().double() * len(labels), sums.new_tensor(hits), sums.new_tensor(len(labels))])
        if not last:
            continue
        if clip_grad:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        lr = current_lr(optimizer)
        scheduler.step()
        steps += 1
    return _epoch_metrics(all_reduce(sums, device), lr, steps, watch.elapsed())


def _usable_batches(loader: Iterable, accumulation: int, max_steps: int | None) -> int | None:
    """Batches that make whole optimizer steps (None: as many as come, when the loader has no length)."""
    try:
        usable = len(loader) // accumulation * accumulation  # type: ignore[arg-type]
    except TypeError:
        usable = None
    if max_steps:
        usable = min(usable, max_steps * accumulation) if usable is not None else max_steps * accumulation
    return usable


def _sync_on(model: nn.Module, last: bool):
    """DDP averages gradients over the ranks on the last pass of an accumulation group only."""
    no_sync = getattr(model, "no_sync", None)
    return contextlib.nullcontext() if last or no_sync is None else no_sync()


def _forward_backward(model, clips, labels, device, amp_dtype, scaler, accumulation):
    clips = normalize_clips(clips.to(device, non_blocking=True))
    labels = labels.to(device, non_blocking=True)
    with autocast(device, amp_dtype):
        logits = model(clips)
    loss = F.cross_entropy(logits.float(), labels)
    scaler.scale(loss / accumulation).backward()
    return logits, loss


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
