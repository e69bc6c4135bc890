"""The GPU paths of ean.train (AMP, channels_last, a GPU checkpoint read on the CPU): `gpu`-marked, so they run
only where CUDA is present (``python -m pytest -m gpu``) and are skipped elsewhere."""

from __future__ import annotations

import math

import pytest
import torch

from ean.train import fit, load_checkpoint
from ean.train.config import amp_dtype, resolve_device, resolve_trainer_config, use_channels_last
from tests.train.helpers import Recorder, tiny_config

pytestmark = pytest.mark.gpu


def test_auto_settings_pick_the_gpu_with_amp_and_channels_last():
    cfg = resolve_trainer_config({})
    device = resolve_device(cfg)
    assert device.type == "cuda"
    assert amp_dtype(cfg, device) in (torch.bfloat16, torch.float16) and use_channels_last(cfg, device)


@pytest.mark.parametrize("amp", ["bf16", "fp16", "none"])
def test_fit_on_the_gpu_trains_with_amp_and_channels_last(synthetic_root, tmp_path, amp):
    config = tiny_config(synthetic_root, amp=amp, channels_last="auto", deterministic=False, device="cuda")
    recorder = Recorder()
    result = fit(config, tmp_path, reporter=recorder)
    metrics = [r["metrics"] for r in recorder.epochs()]
    assert len(metrics) == 2 and all(math.isfinite(m["train_loss"]) for m in metrics)
    assert all(m["peak_memory_mb"] > 0 for m in metrics)  # measured on the device
    assert 0 <= result["top1"] <= 100 and result["num_videos"] > 0


@pytest.mark.parametrize("amp", ["bf16", "none"])  # fp16 needs CUDA, so its runs cannot move to the CPU
def test_a_gpu_checkpoint_resumes_on_the_cpu(synthetic_root, tmp_path, amp):
    fit(tiny_config(synthetic_root, amp=amp, deterministic=False, device="cuda"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 2
    resumed = Recorder()
    fit(tiny_config(synthetic_root, epochs=3, amp=amp, deterministic=False, device="cpu"), tmp_path, reporter=resumed)
    assert [r["epoch"] for r in resumed.epochs()] == [3]
    assert math.isfinite(resumed.epochs()[0]["metrics"]["train_loss"])
