"""Helpers of the training tests: tiny run configs (ResNet-18, 4 segments, 32 px) and a recording reporter."""

from __future__ import annotations

import copy

SYNTHETIC = {"num_videos": 24, "num_classes": 4, "size": 32, "seed": 0, "min_frames": 8, "max_frames": 12}
# Four frames per video, one per segment, and no random crop or flip: every training clip is the same whatever
# the seed, so a DDP run and a one-process run see the same data (see test_ddp.py).
FIXED_CLIPS = {"num_videos": 21, "num_classes": 3, "size": 32, "seed": 1, "min_frames": 4, "max_frames": 4}


class SimulatedCrash(Exception):
    """Raised by a Recorder to stop a trial after an epoch, as a crash would."""


def tiny_config(root: str, seed: int = 0, **trainer) -> dict:
    """A run config small enough to train a few steps in about a second on one CPU thread."""
    config = {
        "model": {
            "backbone": "resnet18",
            "num_segments": 4,
            "input_size": 32,
            "block": "none",
            "regions": "none",
            "num_classes": SYNTHETIC["num_classes"],
        },
        "data": {
            "dataset": "synthetic",
            "root": root,
            **SYNTHETIC,
            "resize": [32, 42],
            "num_workers": 0,
            "decode_timeout_s": 0,
        },
        "trainer": {
            "epochs": 2,
            "batch_size": 4,
            "per_device_batch": None,
            "lr": 0.01,
            "num_threads": 1,
            "deterministic": True,
            "max_steps_per_epoch": 3,
        },
        "seed": seed,
    }
    config["trainer"].update(trainer)
    return config


def with_changes(config: dict, **sections) -> dict:
    """A deep copy of ``config`` with some keys of its sections replaced: ``with_changes(c, data={...})``."""
    out = copy.deepcopy(config)
    for section, values in sections.items():
        if isinstance(values, dict):
            out[section].update(values)
        else:
            out[section] = values
    return out


class Recorder:
    """A reporter that keeps every report (and can fail after a given epoch, like a crashed trial)."""

    def __init__(self, fail_after_epoch: int | None = None):
        self.reports: list[dict] = []
        self.fail_after_epoch = fail_after_epoch

    def __call__(self, report: dict) -> None:
        self.reports.append(copy.deepcopy(report))
        if self.fail_after_epoch is not None and report["epoch"] == self.fail_after_epoch and not report["done"]:
            raise SimulatedCrash(f"simulated crash after epoch {report['epoch']}")

    def epochs(self) -> list[dict]:
        return [r for r in self.reports if not r["done"]]

    def final(self) -> dict:
        (done,) = [r for r in self.reports if r["done"]]
        return done
