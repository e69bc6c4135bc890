"""step_time: the training step as fit runs it, on random clips, scaled to the recipe's batch."""

from __future__ import annotations

import math
from types import MethodType, SimpleNamespace

import ean.train.step_time as step_time

TINY = {
    "model": {"backbone": "resnet18", "num_segments": 2, "input_size": 32, "num_classes": 4, "block": "none"},
    "trainer": {"batch_size": 8, "per_device_batch": 2, "epochs": 1, "device": "cpu"},
    "data": {},
    "seed": 0,
}


def test_a_step_is_timed_and_scaled_by_accumulation_and_batch(monkeypatch):
    """On a fake clock, a micro-batch's forward and backward "take" 5 s and an update 1 s: a step of 4
    accumulated micro-batches of 2 clips, timed on 1 clip, takes 5 x 4 x 2 + 1 s (one update a step)."""
    now = [0.0]
    monkeypatch.setattr(step_time, "time", SimpleNamespace(perf_counter=lambda: now[0]))

    def timed_update(optimizer):
        def step(self, *args, **kwargs):
            now[0] += 1.0
            return real_step(*args, **kwargs)

        real_step, optimizer.step = optimizer.step, MethodType(step, optimizer)  # bound: the schedule wraps it
        return optimizer

    build_optimizer = step_time.build_optimizer
    monkeypatch.setattr(step_time, "build_optimizer", lambda *args: timed_update(build_optimizer(*args)))

    def train_epoch(model, batches, optimizer, *args, **kwargs):
        now[0] += 5.0
        optimizer.step()

    monkeypatch.setattr(step_time, "train_epoch", train_epoch)
    assert step_time.step_seconds(TINY, steps=2, device="cpu", clips=1) == 5.0 * 4 * 2 + 1.0


def test_a_real_step_runs_on_the_cpu():
    assert math.isfinite(step_time.step_seconds(TINY, steps=1, device="cpu")) and step_time.step_seconds(TINY, 1) > 0
