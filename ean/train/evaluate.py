"""Evaluation under a test protocol: per-video softmax scores of the logits averaged over views, then metrics.

Protocols (``data.test_clips`` x ``data.test_crops``): 1 clip x centre crop (Something), 2 clips
(Diving48), 10 clips x 3 crops (Kinetics). Dataflow of one batch::

    uint8 clips (B, V, T, L, 3, S, S) (or (B, T, L, 3, S, S) when V = 1) -> (B*V, T, L, 3, S, S)
      -> in chunks: device -> normalize_clips (as in training) -> logits (B*V, K)
      -> mean over the V views (B, K) (the authors' test code averages raw outputs) -> log-softmax
    scores = exp(...) (B, K); loss = -log score[label]

Under DDP each rank scores its share; the rows are gathered and de-duplicated by video index (the
DistributedSampler pads the last round with repeated videos), so every rank gets the same full result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from ean.data.transforms import normalize_clips
from ean.train.distributed import all_gather_rows
from ean.train.metrics import class_accuracy_dict, per_class_top1, topk_accuracy
from ean.train.runtime import autocast


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    max_clips_per_forward: int | None = None,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Scores every video of ``loader`` and computes loss, top-1/top-5 and per-class accuracy.

    Args:
        model: the network (or its DDP wrapper), put in eval mode here.
        loader: yields ``(clips, labels, video_index)``; clips (B, V, T, L, 3, S, S) or (B, T, L, 3, S, S).
        device: where the model is.
        amp_dtype: autocast dtype, or None for fp32.
        max_clips_per_forward: split the B*V clips of a batch into forward passes of at most this many
            (bounds memory under 10 x 3 views); None: one pass per batch.
        class_names: K names (default: ``loader.dataset.class_names``, else "0" ... "K-1").

    Returns:
        ``val_loss`` (mean NLL of the softmax of the view-averaged logits), ``val_top1``, ``val_top5``,
        ``mean_class_top1`` (percent), ``per_class_top1`` ({class name: percent}, classes with videos),
        ``num_videos``, ``views`` (V), and the arrays ``scores`` (N, K) float32, ``labels`` (N,) int64,
        ``video_index`` (N,) int64 (sorted by video index), ``class_names`` (K).
    """
    model.eval()
    rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    views = 1
    for clips, labels, index in loader:
        views = clips.shape[1] if clips.dim() == 7 else 1
        log_scores = _score_batch(model, clips, views, device, amp_dtype, max_clips_per_forward)
        rows.append((log_scores.cpu(), labels.long().cpu(), index.long().cpu()))
    if not rows:
        raise RuntimeError("the evaluation loader yielded no batch (an empty validation split?)")
    log_scores, labels, index = (torch.cat(parts) for parts in zip(*rows, strict=True))
    log_scores, labels, index = _gather_unique(log_scores, labels, index, device)
    names = class_names or list(getattr(getattr(loader, "dataset", None), "class_names", []))
    return _summarise(log_scores, labels, index, names or [str(k) for k in range(log_scores.shape[1])], views)


def _score_batch(
    model: nn.Module,
    clips: torch.Tensor,
    views: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    chunk: int | None,
) -> torch.Tensor:
    """(B, [V,] T, L, 3, S, S) -> (B, K) log-softmax of the view-averaged logits (the authors' test code
    averages the network's raw outputs over the clips)."""
    batch = clips.shape[0]
    flat = clips.flatten(0, 1) if clips.dim() == 7 else clips
    logits = []
    for part in flat.split(chunk or flat.shape[0]):
        with autocast(device, amp_dtype):
            logits.append(model(normalize_clips(part.to(device, non_blocking=True))).float())
    return torch.cat(logits).view(batch, views, -1).mean(dim=1).log_softmax(dim=-1)


def _gather_unique(
    log_scores: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every rank's rows, one per video (the first seen), sorted by video index."""
    log_scores = all_gather_rows(log_scores, device)
    labels = all_gather_rows(labels, device)
    index = all_gather_rows(index, device)
    _, first = np.unique(index.numpy(), return_index=True)
    keep = torch.from_numpy(first)
    return log_scores[keep], labels[keep], index[keep]


def _summarise(
    log_scores: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, class_names: list[str], views: int
) -> dict[str, Any]:
    scores = log_scores.exp().numpy().astype(np.float32)
    labels_np = labels.numpy().astype(np.int64)
    ranked = log_scores.numpy()  # ranks where float32 probabilities underflow to tied zeros (log-probability < -103)
    per_class = per_class_top1(ranked, labels_np, scores.shape[1])
    return {
        "val_loss": float(-log_scores.gather(1, labels[:, None]).mean()),
        "val_top1": topk_accuracy(ranked, labels_np, 1),
        "val_top5": topk_accuracy(ranked, labels_np, 5),
        "mean_class_top1": float(np.nanmean(per_class)),
        "per_class_top1": class_accuracy_dict(per_class, class_names),
        "num_videos": len(labels_np),
        "views": views,
        "scores": scores,
        "labels": labels_np,
        "video_index": index.numpy().astype(np.int64),
        "class_names": list(class_names),
    }
