"""Checkpoint files: atomic writes, weights_only loading, generator states."""

from __future__ import annotations

import argparse
import random

import numpy as np
import pytest
import torch

from ean.train import load_checkpoint, save_checkpoint
from ean.train.checkpoint import CHECKPOINT_FORMAT, capture_rng, restore_rng


def _draws() -> tuple:
    return torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random()


def test_round_trip_with_weights_only(tmp_path):
    state = {"format": CHECKPOINT_FORMAT, "epoch": 3, "model": torch.nn.Linear(2, 2).state_dict(), "history": []}
    path = save_checkpoint(tmp_path / "checkpoints" / "last.pt", state)
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", {"format": CHECKPOINT_FORMAT, "epoch": 1})
    with pytest.raises(Exception):  # noqa: B017 - torch.save's error type for an unpicklable object varies
        save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "epoch": 2, "bad": lambda: None})
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_code_is_refused(tmp_path):
    torch.save({"format": CHECKPOINT_FORMAT, "x": argparse.Namespace(a=1)}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="(?i)weights_only"):
        load_checkpoint(tmp_path / "evil.pt")


def test_other_files_are_refused(tmp_path):
    torch.save({"weight": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not an ean.train checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_generator_states_round_trip(tmp_path):
    state = capture_rng()
    path = save_checkpoint(tmp_path / "rng.pt", {"format": CHECKPOINT_FORMAT, "rng": [state]})
    first = _draws()
    restore_rng(load_checkpoint(path)["rng"][0])
    assert repr(first) == repr(_draws())
