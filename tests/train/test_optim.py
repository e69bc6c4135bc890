"""SGD and the per-step schedules: step decay at 0-based epochs, warm-up, cosine; plain-data state."""

from __future__ import annotations

import io
import math

import pytest
import torch

from ean.train import build_optimizer, build_scheduler, resolve_trainer_config


def _lrs(epochs: int, steps_per_epoch: int, **trainer) -> list[float]:
    model = torch.nn.Linear(2, 2)
    cfg = resolve_trainer_config({"epochs": epochs, "lr": 1.0, **trainer})
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    lrs = []
    for _ in range(epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_sgd_recipe():
    cfg = resolve_trainer_config({})
    optimizer = build_optimizer(torch.nn.Linear(2, 2), cfg)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 5e-4)


def test_step_decay_after_completed_epochs():
    lrs = _lrs(5, 2, lr_steps=[2, 4], lr_gamma=0.1)
    # epochs 0-1 at 1, 2-3 at 0.1, 4 at 0.01: "lr_steps: [2, 4]" decays after 2 and 4 completed epochs
    assert lrs == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_linear_warmup_per_step():
    lrs = _lrs(3, 4, warmup_epochs=1, lr_steps=[])
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4:] == pytest.approx([1.0] * 8)


def test_cosine_with_warmup():
    lrs = _lrs(4, 2, schedule="cosine", warmup_epochs=1)
    assert lrs[:2] == pytest.approx([0.5, 1.0])
    assert lrs[2] == pytest.approx(1.0)
    assert lrs[4] == pytest.approx(0.5 * (1 + math.cos(math.pi * 1 / 3)))
    assert lrs == sorted(lrs[:2]) + sorted(lrs[2:], reverse=True)
    assert lrs[-1] > 0


def test_schedule_state_is_plain_data():
    model = torch.nn.Linear(2, 2)
    cfg = resolve_trainer_config({"epochs": 3, "warmup_epochs": 1})
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, 5)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    other_opt = build_optimizer(torch.nn.Linear(2, 2), cfg)
    other = build_scheduler(other_opt, cfg, 5)
    other.load_state_dict(state)
    assert other.last_epoch == 7 and other.get_last_lr() == scheduler.get_last_lr()
