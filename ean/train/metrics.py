"""Accuracy and resource metrics: top-k, per-class accuracy over videos, clips/s, peak memory.

Accuracies are percentages (0-100). Top-k with k larger than the number of classes K counts with k = K.
Equal scores rank the lower class index first (as ``numpy.argmax`` does), in every metric here: top-1, top-5
and per-class accuracy then count the same hits for any k (``torch.topk`` orders ties by no fixed rule, so
a video whose scores tie, from a collapsed model, could count for one metric and not the other).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows have their label among their k highest scores, for each k.

    Args:
        scores: (N, K) logits or probabilities.
        labels: (N,) int.
        ks: the k values.

    Returns:
        One count per k.
    """
    top = ranked_classes(scores, max(ks))  # (N, k)
    hits = top == labels[:, None]
    return [int(hits[:, : min(k, scores.shape[1])].any(dim=1).sum()) for k in ks]


def ranked_classes(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k best classes of each row, best first, equal scores by lower class index: (N, K) -> (N, min(k, K))."""
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, : min(k, scores.shape[1])]


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Top-k accuracy in percent of (N, K) scores against (N,) labels (NaN when N = 0)."""
    if len(labels) == 0:
        return float("nan")
    (hits,) = topk_correct(torch.from_numpy(np.asarray(scores)), torch.from_numpy(np.asarray(labels)), (k,))
    return 100.0 * hits / len(labels)


def per_class_top1(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Top-1 accuracy of each class in percent, shape (K,); NaN for a class without videos.

    Args:
        scores: (N, K), one row per video.
        labels: (N,) int.
        num_classes: K.
    """
    labels = np.asarray(labels, dtype=np.int64)
    best = ranked_classes(torch.from_numpy(np.asarray(scores)), 1)[:, 0].numpy()
    correct = (best == labels).astype(np.float64)
    total = np.bincount(labels, minlength=num_classes).astype(np.float64)
    hits = np.bincount(labels, weights=correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * hits / total, np.nan)


def class_accuracy_dict(per_class: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """{class name: top-1 percent} for the classes that have videos (NaN entries left out)."""
    return {str(name): float(acc) for name, acc in zip(class_names, per_class, strict=True) if not np.isnan(acc)}


def reset_peak_memory(device: torch.device) -> None:
    """Starts a new peak-memory period on CUDA (CPU peaks are per process, see ``peak_memory_mb``)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: on CUDA the tensors allocated since ``reset_peak_memory``; on CPU the process's
    peak resident set size since it started (a high-water mark, never lower from one epoch to the next)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class Stopwatch:
    """Wall-clock time of a period, synchronising CUDA so that queued kernels are counted."""

    def __init__(self, device: torch.device):
        self.device = device
        self._sync()
        self.start = time.perf_counter()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def elapsed(self) -> float:
        """Seconds since the stopwatch was made."""
        self._sync()
        return time.perf_counter() - self.start
