"""Ensembles of trials (the paper's "En" rows): the average of their per-video log-probabilities.

The authors' ``average_scores.py`` sums the networks' raw outputs (the paper: "averaging the predicted action
scores ..., which follows TSM"). Each member's log-softmax is its logits less one number per video (its
normaliser, the same for every class), so the mean log-probability ranks a video's classes exactly as the
sum of the logits does: top-1 and top-5 are the authors' (``runners.ensembles.ENSEMBLE_RULE`` names the rule
in the cells' keys). The scores written are its softmax (the members' normalised geometric mean).

Every member must have scored the same videos (same video indices and labels) over the same classes, in
the same order; otherwise :class:`EnsembleError` says which file differs and how.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ean.train.metrics import class_accuracy_dict, per_class_top1, topk_accuracy
from ean.train.scores import VideoScores, read_scores, write_scores

#: Below the smallest float32 probability: a score stored as 0 stays the least likely class, not minus infinity.
_FLOOR = 1e-46


class EnsembleError(ValueError):
    """Score files that cannot be averaged; the message names the file and the mismatch."""


def ensemble(score_files: Sequence[str | Path], out: str | Path | None = None) -> dict[str, Any]:
    """Averages the per-video log-probabilities of several trials and measures the average.

    Args:
        score_files: ``scores/val_scores.npz`` of each member (at least one).
        out: where to write the averaged scores (same format), or None.

    Returns:
        ``top1``, ``top5``, ``mean_class_top1`` (percent), ``per_class_top1`` ({class name: percent}),
        ``num_videos``, ``members`` (the number of files), ``member_top1`` (each file's top-1), and
        ``scores_path`` when ``out`` is given.
    """
    if not score_files:
        raise EnsembleError("ensemble needs at least one scores file")
    members = [read_scores(path) for path in score_files]
    reference = members[0]
    for path, member in zip(score_files[1:], members[1:], strict=True):
        _check_same_videos(score_files[0], reference, path, member)
    log_mean = np.mean([np.log(np.maximum(m.scores.astype(np.float64), _FLOOR)) for m in members], axis=0)
    mean = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
    mean /= mean.sum(axis=1, keepdims=True)  # ranked (as log_mean ranks) before the float32 cast
    averaged = mean.astype(np.float32)
    per_class = per_class_top1(mean, reference.labels, averaged.shape[1])
    result: dict[str, Any] = {
        "top1": topk_accuracy(mean, reference.labels, 1),
        "top5": topk_accuracy(mean, reference.labels, 5),
        "mean_class_top1": float(np.nanmean(per_class)),
        "per_class_top1": class_accuracy_dict(per_class, reference.class_names),
        "num_videos": len(reference.labels),
        "members": len(members),
        "member_top1": [topk_accuracy(m.scores, m.labels, 1) for m in members],
    }
    if out is not None:
        path = write_scores(out, averaged, reference.labels, reference.video_index, reference.class_names)
        result["scores_path"] = str(path)
    return result


def _check_same_videos(ref_path, ref: VideoScores, path, other: VideoScores) -> None:
    if other.class_names != ref.class_names:
        raise EnsembleError(
            f"{path} has {len(other.class_names)} classes {_head(other.class_names)}, but {ref_path} has "
            f"{len(ref.class_names)} {_head(ref.class_names)}: members must share the classes, in order"
        )
    if not np.array_equal(other.video_index, ref.video_index):
        only_ref = np.setdiff1d(ref.video_index, other.video_index)
        only_other = np.setdiff1d(other.video_index, ref.video_index)
        raise EnsembleError(
            f"{path} scored {len(other.video_index)} videos and {ref_path} {len(ref.video_index)}; videos only in "
            f"{ref_path}: {_head(only_ref.tolist())}; only in {path}: {_head(only_other.tolist())}"
        )
    if not np.array_equal(other.labels, ref.labels):
        wrong = ref.video_index[other.labels != ref.labels]
        raise EnsembleError(f"{path} and {ref_path} give different labels to videos {_head(wrong.tolist())}")


def _head(items: Sequence, n: int = 5) -> str:
    items = list(items)
    return "[" + ", ".join(map(str, items[:n])) + (f", ... {len(items) - n} more]" if len(items) > n else "]")
