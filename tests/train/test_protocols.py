"""Evaluation protocols on the synthetic dataset: 1 clip x centre crop, 2 clips, 10 clips x 3 crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ean.data import build_loader, normalize_clips
from ean.models import build_model
from ean.train import evaluate, fit, read_scores, resolve_config
from tests.train.helpers import Recorder, tiny_config, with_changes

CPU = torch.device("cpu")
PROTOCOLS = {"something": (1, 1), "diving48": (2, 1), "kinetics": (10, 3)}


@pytest.mark.parametrize("name", PROTOCOLS)
def test_protocol_scores_average_the_views(synthetic_root, name):
    clips, crops = PROTOCOLS[name]
    config = resolve_config(with_changes(tiny_config(synthetic_root), data={"test_clips": clips, "test_crops": crops}))
    torch.manual_seed(0)
    model = build_model(config["model"]).eval()
    loader = build_loader(config["data"], "val", batch_size=3, seed=0)
    result = evaluate(model, loader, CPU, max_clips_per_forward=8)
    assert result["views"] == clips * crops and result["num_videos"] == len(loader.dataset) == 4
    assert result["scores"].shape == (4, 4) and np.allclose(result["scores"].sum(1), 1, atol=1e-5)
    with torch.no_grad():
        for row in (0, 3):  # a reference for two videos (decoding all 30 views again is slow)
            video = result["video_index"][row]
            views, label, index = loader.dataset[int(video)]
            views = views if views.dim() == 6 else views[None]  # (V, T, L, 3, S, S)
            assert views.shape[0] == clips * crops and label == result["labels"][row] and index == video
            expected = model(normalize_clips(views)).softmax(-1).mean(0)
            assert torch.allclose(torch.from_numpy(result["scores"][row]), expected, atol=1e-5)


def test_fit_tests_with_the_datasets_protocol(synthetic_root, tmp_path):
    """Epochs are validated on 1 clip x 1 crop; the final test uses test_clips x test_crops (here 2 clips)."""
    config = with_changes(tiny_config(synthetic_root, epochs=1), data={"test_clips": 2})
    recorder = Recorder()
    result = fit(config, tmp_path, reporter=recorder)
    assert result["protocol"] == "2 clips x 1 crop" and result["num_videos"] == 4
    scores = read_scores(result["scores_path"])
    assert result["top1"] == pytest.approx(100 * np.mean(scores.scores.argmax(1) == scores.labels))
    nll = -np.log(scores.scores[np.arange(len(scores.labels)), scores.labels]).mean()
    assert result["test_loss"] == pytest.approx(float(nll), rel=1e-4)  # the final test's loss, not an epoch's
    assert "val_top1" in recorder.epochs()[0]["metrics"]
