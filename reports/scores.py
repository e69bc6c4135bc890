"""Per-video scores logged by trials (``scores/val_scores.npz``) and the per-class accuracy they give.

A scores file holds ``scores`` (N x K softmax scores, one line per clip/crop), ``labels`` (N), ``video_index``
(N: lines with the same index belong to one video) and ``class_names`` (K). A video's prediction is the
argmax of its lines' mean score (the usual multi-clip, multi-crop averaging).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study import mlflow_schema as S


@dataclass(frozen=True)
class Scores:
    """Validation scores of one run.

    Attributes:
        scores: (N, K) float32 softmax scores, one line per evaluated clip/crop.
        labels: (N,) int class of each line.
        video_index: (N,) int video of each line.
        class_names: (K,) the class names.
    """

    scores: np.ndarray
    labels: np.ndarray
    video_index: np.ndarray
    class_names: tuple[str, ...]


def read_scores(path: str | Path) -> Scores:
    """Reads a scores ``.npz`` file and checks its shapes."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in S.SCORES_ARRAYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; expected {list(S.SCORES_ARRAYS)}")
        s = Scores(z["scores"], z["labels"], z["video_index"], tuple(str(c) for c in z["class_names"]))
    n, k = s.scores.shape
    if s.labels.shape != (n,) or s.video_index.shape != (n,) or len(s.class_names) != k:
        raise ValueError(
            f"{path}: inconsistent shapes: scores {s.scores.shape}, labels {s.labels.shape}, "
            f"video_index {s.video_index.shape}, {len(s.class_names)} class names"
        )
    return s


def download_scores(run_id: str, tracking_uri: str | None = None) -> Scores | None:
    """Downloads and reads a run's scores artifact; ``None`` when the run has none."""
    from mlflow.tracking import MlflowClient  # here: a report whose figures are kept reads no scores

    client = MlflowClient(tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, S.ARTIFACT_SCORES, tmp)
        except Exception:  # noqa: BLE001 - MLflow raises several types for a missing artifact
            return None
        return read_scores(path)


def per_class_accuracy(s: Scores) -> np.ndarray:
    """Video-level top-1 accuracy of each class in percent, shape (K,); NaN for classes without videos.

    Args:
        s: the scores of one run.
    """
    videos, inverse = np.unique(s.video_index, return_inverse=True)
    k = s.scores.shape[1]
    summed = np.zeros((len(videos), k), dtype=np.float64)
    np.add.at(summed, inverse, s.scores)
    labels = np.zeros(len(videos), dtype=np.int64)
    labels[inverse] = s.labels
    correct = summed.argmax(axis=1) == labels
    total = np.bincount(labels, minlength=k).astype(np.float64)
    hits = np.bincount(labels, weights=correct.astype(np.float64), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * hits / total, np.nan)


def mean_per_class_accuracy(runs: list[Scores]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-class accuracy averaged over runs (e.g. seeds) that share the same classes.

    Returns:
        (K,) mean accuracy in percent and the class names.

    Raises:
        ValueError: no runs, or runs with different class names.
    """
    if not runs:
        raise ValueError("no scores to average")
    names = runs[0].class_names
    for r in runs[1:]:
        if r.class_names != names:
            raise ValueError("the runs' class names differ; they are not of one dataset")
    return np.nanmean(np.stack([per_class_accuracy(r) for r in runs]), axis=0), names
