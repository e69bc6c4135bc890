"""Top-k counts, per-class accuracy and peak memory."""

from __future__ import annotations

import math

import numpy as np
import torch

from ean.train.metrics import class_accuracy_dict, peak_memory_mb, per_class_top1, topk_accuracy, topk_correct


def test_topk_counts():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([2, 0, 0])
    assert topk_correct(scores, labels, (1, 2, 5)) == [1, 2, 3]  # k > K counts as k = K


def test_topk_accuracy_percent():
    scores = np.eye(4, dtype=np.float32)
    assert topk_accuracy(scores, np.array([0, 1, 3, 3]), 1) == 75.0
    assert math.isnan(topk_accuracy(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), 1))


def test_per_class_accuracy_skips_classes_without_videos():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    per_class = per_class_top1(scores, np.array([0, 1, 1]), 3)
    assert per_class[:2].tolist() == [100.0, 50.0] and math.isnan(per_class[2])
    assert class_accuracy_dict(per_class, ["a", "b", "c"]) == {"a": 100.0, "b": 50.0}


def test_tied_scores_rank_the_lower_class_first_in_every_metric():
    scores = np.zeros((4, 400), dtype=np.float32)  # a collapsed model: every class scores the same
    scores[3, [3, 8]] = 2.0
    labels = np.array([0, 3, 399, 3])
    assert topk_correct(torch.from_numpy(scores), torch.from_numpy(labels), (1, 5)) == [2, 3]
    assert topk_accuracy(scores, labels, 1) == 50.0 and topk_accuracy(scores, labels, 5) == 75.0
    per_class = per_class_top1(scores, labels, 400)
    assert per_class[0] == 100.0 and per_class[3] == 50.0 and per_class[399] == 0.0


def test_peak_memory_positive_on_cpu():
    assert peak_memory_mb(torch.device("cpu")) > 10
