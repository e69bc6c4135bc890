"""SGD and the per-step schedules: step decay at 0-based epochs, warm-up, cosine; plain-data state."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ean.train import build_optimizer, build_scheduler, resolve_trainer_config
from ean.train.optim import SGD, parameter_groups

REPO = Path(__file__).resolve().parents[2]


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


def _trained(optimizer_class: type, steps: int, state: dict | None = None) -> tuple[dict, dict]:
    """A small conv net in the authors' parameter groups after ``steps`` updates by ``optimizer_class`` with a
    warm-up schedule, from ``state`` (an optimizer state dict) if given: (the net's, the optimizer's state)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)
    )
    cfg = resolve_trainer_config({"epochs": 2, "lr": 0.1, "warmup_epochs": 1})
    groups = parameter_groups(model, cfg["lr"], cfg["weight_decay"], cfg["param_groups"])
    optimizer = optimizer_class(groups, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    if state is not None:
        optimizer.load_state_dict(state)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=3)
    for step in range(steps):
        generator = torch.Generator().manual_seed(step)
        x, y = torch.randn(5, 3, 8, 8, generator=generator), torch.randint(0, 3, (5,), generator=generator)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    return model.state_dict(), optimizer.state_dict()


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_the_sgd_updates_bit_for_bit_as_torchs():
    assert type(build_optimizer(torch.nn.Linear(1, 1), resolve_trainer_config({}))) is SGD
    ours, our_state = _trained(SGD, 4)
    theirs, their_state = _trained(torch.optim.SGD, 4)
    _assert_equal(ours, theirs)
    assert our_state["param_groups"] == their_state["param_groups"]
    for i in their_state["state"]:
        _assert_equal(our_state["state"][i], their_state["state"][i])
    # Their states are interchangeable: a checkpoint of either resumes in the other the same way.
    _assert_equal(_trained(SGD, 3, their_state)[0], _trained(torch.optim.SGD, 3, our_state)[0])


def test_the_sgd_calls_torchs_update_unwrapped_even_after_a_torch_sgd_was_built():
    """torch wraps ``torch.optim.SGD.step`` with its hooks when the first ``torch.optim.SGD`` is built; the
    class must still reach the bare update (the wrappers import ``torch._dynamo``)."""
    code = (
        "import torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1); "
        "from ean.train.optim import _SGD_STEP; "
        "print(hasattr(_SGD_STEP, '__wrapped__'), _SGD_STEP.__module__, _SGD_STEP.__qualname__)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert shown.stdout.split() == ["False", "torch.optim.sgd", "SGD.step"]
