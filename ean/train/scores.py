"""Per-video score files (``scores/val_scores.npz``): what trials save so that they can be ensembled later.

Arrays (read with ``np.load(path, allow_pickle=False)``):
    scores: (N, K) float32 softmax probabilities of each video: the softmax of its logits averaged over the
        protocol's views (``ean.train.evaluate``).
    labels: (N,) int64 class of each video.
    video_index: (N,) int64 index of each video in the validation list (sorted).
    class_names: (K,) str.

One row per video; readers that average rows sharing a ``video_index`` (``reports.scores``) read it as is,
and :func:`read_scores` also accepts files with several rows per video (it averages them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ean.files_write import atomic_path

SCORE_ARRAYS = ("scores", "labels", "video_index", "class_names")


@dataclass(frozen=True)
class VideoScores:
    """Scores of one trial, one row per video, sorted by video index.

    Attributes:
        scores: (N, K) float32 probabilities.
        labels: (N,) int64.
        video_index: (N,) int64, increasing.
        class_names: K names.
    """

    scores: np.ndarray
    labels: np.ndarray
    video_index: np.ndarray
    class_names: tuple[str, ...]


def write_scores(path: str | Path, scores: np.ndarray, labels, video_index, class_names) -> Path:
    """Writes a scores file atomically (temporary file in the same folder, then rename); returns its path.

    Args:
        path: destination ``.npz``.
        scores: (N, K) probabilities.
        labels: (N,) int.
        video_index: (N,) int.
        class_names: K names.
    """
    with atomic_path(path, durable=True) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            scores=np.asarray(scores, dtype=np.float32),
            labels=np.asarray(labels, dtype=np.int64),
            video_index=np.asarray(video_index, dtype=np.int64),
            class_names=np.asarray([str(c) for c in class_names], dtype=str),
        )
    return Path(path)


def read_scores(path: str | Path) -> VideoScores:
    """Reads a scores file; rows of the same video are averaged; raises ValueError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"scores file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in SCORE_ARRAYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; a scores file holds {list(SCORE_ARRAYS)}")
        scores, labels, index, names = (z[k] for k in SCORE_ARRAYS)
    n, k = scores.shape if scores.ndim == 2 else (-1, -1)
    if n < 0 or labels.shape != (n,) or index.shape != (n,) or len(names) != k:
        raise ValueError(
            f"{path}: inconsistent shapes: scores {scores.shape}, labels {labels.shape}, "
            f"video_index {index.shape}, {len(names)} class names"
        )
    videos, inverse = np.unique(index, return_inverse=True)
    summed = np.zeros((len(videos), k), dtype=np.float64)
    np.add.at(summed, inverse, scores)
    counts = np.bincount(inverse, minlength=len(videos))[:, None]
    video_labels = np.zeros(len(videos), dtype=np.int64)
    video_labels[inverse] = labels
    averaged = (summed / counts).astype(np.float32)
    return VideoScores(averaged, video_labels, videos.astype(np.int64), tuple(str(c) for c in names))
