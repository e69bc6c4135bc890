"""run_settings: a run's threads and determinism hold inside the block and are restored after it."""

from __future__ import annotations

import pytest
import torch

from ean.train import resolve_trainer_config
from ean.train.runtime import run_settings


def _state() -> tuple:
    return (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
    )


def test_settings_hold_inside_and_are_restored_after():
    before = _state()
    threads = 1 if before[0] != 1 else 2
    cfg = resolve_trainer_config({"deterministic": True, "num_threads": threads})
    with run_settings(cfg, torch.device("cpu")):
        assert _state() == (threads, True, False, True)
    assert _state() == before
    with run_settings(resolve_trainer_config({"deterministic": False}), torch.device("cpu")):
        assert _state()[1:] == (*before[1:3], False)
    assert _state() == before


def _cudnn_precision() -> tuple:
    cudnn = torch.backends.cudnn
    try:
        legacy = cudnn.allow_tf32
    except RuntimeError:
        legacy = "unreadable"
    return legacy, cudnn.fp32_precision, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision


@pytest.mark.parametrize("process", ["default", "conv_ieee", "all_tf32", "legacy_off"])
def test_float32_on_cuda_turns_tf32_convolutions_off_for_the_run(process, monkeypatch):
    """``amp: none`` on CUDA computes in float32, as its recipe and key say (torch's cuDNN default is TF32),
    whatever the process set with torch's legacy or per-operator flags; bf16 and CPU runs leave the flags alone;
    each flag is as it was after the run. (The flags are settings: this runs without a GPU.)"""
    cudnn = torch.backends.cudnn
    before = _cudnn_precision()
    try:
        if process == "conv_ieee":  # the per-operator API: the legacy flag becomes unreadable
            cudnn.conv.fp32_precision = "ieee"
        elif process == "all_tf32":
            cudnn.fp32_precision = "tf32"
        elif process == "legacy_off":
            cudnn.allow_tf32 = False
        set_by_process = _cudnn_precision()
        cuda, cpu = torch.device("cuda"), torch.device("cpu")
        with run_settings(resolve_trainer_config({"amp": "none"}), cuda):
            assert _cudnn_precision()[2:] == ("ieee", "ieee") and not cudnn.allow_tf32
        assert _cudnn_precision() == set_by_process
        for amp, device in (("auto", cuda), ("bf16", cuda), ("none", cpu)):
            with run_settings(resolve_trainer_config({"amp": amp}), device):
                assert _cudnn_precision() == set_by_process, (amp, device)
    finally:
        cudnn.allow_tf32 = True
        cudnn.fp32_precision, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = before[1:]
    assert _cudnn_precision() == before
