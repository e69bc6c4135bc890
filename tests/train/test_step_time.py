"""step_time: the training step as fit runs it, on random clips, scaled to the recipe's batch."""

from __future__ import annotations

import math
from types import MethodType, SimpleNamespace

import pytest

import ean.train.step_time as step_time

TINY = {
    "model": {"backbone": "resnet18", "num_segments": 2, "input_size": 32, "num_classes": 4, "block": "none"},
    "trainer": {"batch_size": 8, "per_device_batch": 2, "epochs": 1, "device": "cpu"},
    "data": {},
    "seed": 0,
}


def fake_clock(monkeypatch, fixed: float, per_clip: float, update: float = 1.0) -> list[int]:
    """A clock on which a micro-batch of n clips "takes" ``fixed + per_clip x n`` s, its first one of each size
    100 s more (a warm-up the timing must leave out), and an optimizer update ``update`` s; returns the sizes
    timed."""
    now, sizes = [0.0], []
    monkeypatch.setattr(step_time, "time", SimpleNamespace(perf_counter=lambda: now[0]))

    def timed_update(optimizer):
        def step(self, *args, **kwargs):
            now[0] += update
            return real_step(*args, **kwargs)

        real_step, optimizer.step = optimizer.step, MethodType(step, optimizer)  # bound: the schedule wraps it
        return optimizer

    build_optimizer = step_time.build_optimizer
    monkeypatch.setattr(step_time, "build_optimizer", lambda *args: timed_update(build_optimizer(*args)))

    def train_epoch(model, batches, optimizer, *args, **kwargs):
        ((clips, _, _),) = batches
        n = clips.shape[0]
        now[0] += fixed + per_clip * n + (100.0 if n not in sizes else 0.0)
        sizes.append(n)
        optimizer.step()

    monkeypatch.setattr(step_time, "train_epoch", train_epoch)
    return sizes


def test_a_step_is_read_off_the_line_through_two_timed_sizes(monkeypatch):
    """A micro-batch of n clips takes 3 + 2n s, an update 1 s: a step of 4 accumulated micro-batches of 2 clips,
    timed on 1 clip and then 2, takes (3 + 2 x 2) x 4 + 1 s (one update a step); the warm-ups are left out."""
    sizes = fake_clock(monkeypatch, fixed=3.0, per_clip=2.0)
    assert step_time.step_seconds(TINY, steps=2, device="cpu", clips=1) == (3.0 + 2.0 * 2) * 4 + 1.0
    assert sizes == [1, 1, 1, 2, 2, 2]


def test_a_small_network_is_timed_on_its_whole_batch_when_the_budget_holds_it(monkeypatch):
    """A network whose fixed cost is most of its time: a clip at a time would price 8 clips at 8 x (0.1 + 0.01)
    s; the budget holds the whole per-device batch, so it is timed as it is (0.1 + 0.08 s and one update)."""
    sizes = fake_clock(monkeypatch, fixed=0.1, per_clip=0.01, update=0.01)
    config = {**TINY, "trainer": {**TINY["trainer"], "per_device_batch": 8}}
    seconds = step_time.step_seconds(config, steps=2, device="cpu", clips=1, budget_s=2.0)
    assert seconds == pytest.approx(0.1 + 0.01 * 8 + 0.01)
    assert sorted(set(sizes)) == [1, 8]


def test_a_large_network_is_timed_on_two_clips_at_the_most_the_budget_holds(monkeypatch):
    sizes = fake_clock(monkeypatch, fixed=0.0, per_clip=3.0)
    config = {**TINY, "trainer": {**TINY["trainer"], "per_device_batch": 8}}
    assert step_time.step_seconds(config, steps=2, device="cpu", clips=1, budget_s=2.0) == pytest.approx(3.0 * 8 + 1.0)
    assert sorted(set(sizes)) == [1, 2]


def test_a_real_step_runs_on_the_cpu():
    assert math.isfinite(step_time.step_seconds(TINY, steps=1, device="cpu")) and step_time.step_seconds(TINY, 1) > 0
