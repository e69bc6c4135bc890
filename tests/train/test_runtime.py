"""run_settings: a run's threads and determinism hold inside the block and are restored after it."""

from __future__ import annotations

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


def test_float32_on_cuda_turns_tf32_convolutions_off_for_the_run():
    """``amp: none`` on CUDA computes in float32, as its recipe and key say (torch's cuDNN default is TF32);
    bf16 and any CPU run leave the flag as it was. (The flag is a setting: this runs without a GPU.)"""
    assert torch.backends.cudnn.allow_tf32
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    with run_settings(resolve_trainer_config({"amp": "none"}), cuda):
        assert not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.allow_tf32
    for amp, device in (("auto", cuda), ("bf16", cuda), ("none", cpu)):
        with run_settings(resolve_trainer_config({"amp": amp}), device):
            assert torch.backends.cudnn.allow_tf32, (amp, device)
