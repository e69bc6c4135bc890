"""step_time: the training step as fit runs it, on random clips, scaled to the recipe's batch."""

from __future__ import annotations

import math
from types import SimpleNamespace

import ean.train.step_time as step_time

TINY = {
    "model": {"backbone": "resnet18", "num_segments": 2, "input_size": 32, "num_classes": 4, "block": "none"},
    "trainer": {"batch_size": 8, "per_device_batch": 2, "epochs": 1, "device": "cpu"},
    "data": {},
    "seed": 0,
}


def test_a_step_is_timed_and_scaled_by_accumulation_and_batch(monkeypatch):
    clock = iter(range(0, 1000, 5))  # every micro-batch "takes" 5 s, whatever the machine does
    monkeypatch.setattr(step_time, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    seconds = step_time.step_seconds(TINY, steps=2, device="cpu", clips=1)
    assert seconds == 5.0 * 4 * 2  # 4 accumulated micro-batches of 2 clips, each timed on 1 clip


def test_a_real_step_runs_on_the_cpu():
    assert math.isfinite(step_time.step_seconds(TINY, steps=1, device="cpu")) and step_time.step_seconds(TINY, 1) > 0
