"""Per-video scores: clip averaging, per-class accuracy, reading the artifact back from MLflow."""

from __future__ import annotations

import numpy as np
import pytest

from reports.scores import Scores, download_scores, mean_per_class_accuracy, per_class_accuracy, read_scores
from tests.reports.mlflow_fixture import BASE_CORRECT, GAIN, VIDEOS_PER_CLASS, scores_arrays


def test_clips_of_a_video_are_averaged_before_the_argmax():
    # Video 0 (class 0): clip A says class 1 weakly, clip B says class 0 strongly -> correct.
    # Video 1 (class 1): both clips say class 2 -> wrong. Class 2 has no video -> NaN.
    s = Scores(
        scores=np.array([[0.3, 0.4, 0.3], [0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.2, 0.3, 0.5]], np.float32),
        labels=np.array([0, 0, 1, 1]),
        video_index=np.array([7, 7, 9, 9]),
        class_names=("a", "b", "c"),
    )
    acc = per_class_accuracy(s)
    assert acc[0] == 100.0 and acc[1] == 0.0 and np.isnan(acc[2])


def test_fixture_scores_give_the_designed_accuracy():
    arrays = scores_arrays("eab")
    s = Scores(arrays["scores"], arrays["labels"], arrays["video_index"], tuple(arrays["class_names"]))
    expected = 100.0 * (BASE_CORRECT + np.array(GAIN["eab"])) / VIDEOS_PER_CLASS
    np.testing.assert_allclose(per_class_accuracy(s), expected)


def test_read_scores_checks_arrays_and_shapes(tmp_path):
    arrays = scores_arrays("only_soitr")
    np.savez(tmp_path / "ok.npz", **arrays)
    assert read_scores(tmp_path / "ok.npz").scores.shape == (120, 6)
    np.savez(tmp_path / "short.npz", **{**arrays, "labels": arrays["labels"][:-1]})
    with pytest.raises(ValueError, match="inconsistent shapes"):
        read_scores(tmp_path / "short.npz")
    np.savez(tmp_path / "partial.npz", scores=arrays["scores"])
    with pytest.raises(ValueError, match="missing arrays"):
        read_scores(tmp_path / "partial.npz")


def test_mean_over_runs_needs_the_same_classes():
    a = Scores(np.eye(2, dtype=np.float32), np.array([0, 1]), np.array([0, 1]), ("x", "y"))
    b = Scores(np.eye(2, dtype=np.float32)[::-1], np.array([0, 1]), np.array([0, 1]), ("x", "y"))
    mean, names = mean_per_class_accuracy([a, b])
    np.testing.assert_allclose(mean, [50.0, 50.0])
    assert names == ("x", "y")
    with pytest.raises(ValueError, match="class names differ"):
        mean_per_class_accuracy([a, Scores(a.scores, a.labels, a.video_index, ("x", "z"))])
    with pytest.raises(ValueError):
        mean_per_class_accuracy([])


def test_download_scores_from_the_store(fixture_store):
    from reports.collect import collect_runs

    uri, spec = fixture_store
    trials = collect_runs(spec.name, uri).trials
    finished = trials[(trials["row"] == "eab") & (trials["status"] == "FINISHED")].iloc[0]
    s = download_scores(finished["run_id"], uri)
    np.testing.assert_array_equal(s.scores, scores_arrays("eab")["scores"])
    failed = trials[trials["status"] == "FAILED"].iloc[0]
    assert download_scores(failed["run_id"], uri) is None
