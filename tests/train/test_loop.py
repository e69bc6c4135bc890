"""train_epoch and evaluate on hand-made batches: metrics, NaN detection, view averaging."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ean.train import (
    NonFiniteLossError,
    build_optimizer,
    build_scheduler,
    evaluate,
    resolve_trainer_config,
    train_epoch,
)

CPU = torch.device("cpu")


class Pooled(nn.Module):
    """(N, T, L, 3, H, W) -> (N, K): mean over everything but the channel, then a linear layer."""

    def __init__(self, num_classes: int = 3, nan_at_call: int | None = None):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)
        self.calls, self.nan_at_call = 0, nan_at_call

    def forward(self, x):
        self.calls += 1
        logits = self.fc(x.mean(dim=(1, 2, 4, 5)))
        return logits * float("nan") if self.calls == self.nan_at_call else logits


def _batches(n: int, batch: int = 2, views: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, views, 4, 1, 3, 8, 8) if views > 1 else (batch, 4, 1, 3, 8, 8)
    batches = []
    for i in range(n):
        clips, labels = torch.randn(shape, generator=g), torch.randint(3, (batch,), generator=g)
        batches.append((clips, labels, torch.arange(i * batch, (i + 1) * batch)))
    return batches


def _optim(model, steps=4, **trainer):
    cfg = resolve_trainer_config({"epochs": 1, "lr": 0.1, **trainer})
    optimizer = build_optimizer(model, cfg)
    return optimizer, build_scheduler(optimizer, cfg, steps)


def test_train_epoch_metrics_and_max_steps():
    model = Pooled()
    optimizer, scheduler = _optim(model)
    stats = train_epoch(model, _batches(4), optimizer, scheduler, CPU, epoch=1, clip_grad=1.0, max_steps=3)
    assert stats["steps"] == 3 and stats["clips"] == 6
    assert stats["train_loss"] > 0 and 0 <= stats["train_top1"] <= 100 and stats["clips_per_s"] > 0
    assert scheduler.last_epoch == 3


def test_non_finite_loss_names_epoch_and_step():
    model = Pooled(nan_at_call=3)
    optimizer, scheduler = _optim(model)
    with pytest.raises(NonFiniteLossError, match=r"loss nan at epoch 7, step 3") as info:
        train_epoch(model, _batches(4), optimizer, scheduler, CPU, epoch=7)
    assert (info.value.epoch, info.value.step) == (7, 3) and math.isnan(info.value.loss)
    assert isinstance(info.value, RuntimeError)


def test_bf16_autocast_on_cpu():
    model = Pooled()
    optimizer, scheduler = _optim(model)
    stats = train_epoch(model, _batches(2), optimizer, scheduler, CPU, epoch=1, amp_dtype=torch.bfloat16)
    assert math.isfinite(stats["train_loss"]) and model.fc.weight.dtype == torch.float32


def test_evaluate_averages_softmax_over_views():
    model = Pooled().eval()
    batches = _batches(3, batch=2, views=6)
    result = evaluate(model, batches, CPU, max_clips_per_forward=5, class_names=["a", "b", "c"])
    with torch.no_grad():
        expected = torch.cat([model(c.flatten(0, 1)).softmax(-1).view(2, 6, 3).mean(1) for c, _, _ in batches])
    labels = torch.cat([y for _, y, _ in batches])
    assert result["views"] == 6 and result["num_videos"] == 6
    assert torch.allclose(torch.from_numpy(result["scores"]), expected, atol=1e-6)
    assert result["val_loss"] == pytest.approx(float(-expected[range(6), labels].log().mean()), rel=1e-5)
    assert result["val_top1"] == pytest.approx(100 * float((expected.argmax(1) == labels).float().mean()))
    assert result["val_top5"] == 100.0  # K = 3 < 5
    assert result["video_index"].tolist() == list(range(6)) and result["class_names"] == ["a", "b", "c"]


class Recording(Pooled):
    """Pooled, keeping every input it is given."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return super().forward(x)


def test_training_and_evaluation_normalise_uint8_clips_identically():
    from ean.data import normalize_clips

    g = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (2, 4, 1, 3, 8, 8), dtype=torch.uint8, generator=g)
    batch = [(clips, torch.tensor([0, 1]), torch.arange(2))]
    model = Recording()
    train_epoch(model, batch, *_optim(model, steps=1), CPU, epoch=1)
    evaluate(model, batch, CPU)
    trained_on, evaluated_on = model.inputs
    assert trained_on.dtype == torch.float32 and torch.equal(trained_on, evaluated_on)
    assert torch.equal(trained_on, normalize_clips(clips))
    assert -2.2 < float(trained_on.min()) < -1.7 and 2.2 < float(trained_on.max()) < 2.7  # ImageNet statistics
