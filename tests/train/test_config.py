"""The trainer section: defaults, unknown keys with hints, invalid values, device and precision choices."""

from __future__ import annotations

import pytest
import torch

from ean.train import TRAINER_DEFAULTS, TrainerConfigError, resolve_config, resolve_trainer_config
from ean.train.config import amp_dtype, resolve_device, use_channels_last

CPU = torch.device("cpu")


def test_defaults_are_the_papers_recipe():
    cfg = resolve_trainer_config({})
    assert cfg == TRAINER_DEFAULTS
    assert (cfg["lr"], cfg["momentum"], cfg["weight_decay"], cfg["clip_grad"]) == (0.01, 0.9, 5e-4, 20.0)
    assert (cfg["schedule"], cfg["lr_steps"], cfg["lr_gamma"]) == ("step", [41, 51, 61], 0.1)


def test_section_or_whole_config_and_input_untouched():
    whole = {"model": {}, "data": {}, "trainer": {"epochs": 3}, "seed": 1}
    assert resolve_trainer_config(whole)["epochs"] == 3
    assert resolve_trainer_config({"epochs": 4})["epochs"] == 4
    assert resolve_trainer_config({"model": {}, "data": {}})["epochs"] == TRAINER_DEFAULTS["epochs"]
    assert whole["trainer"] == {"epochs": 3}


def test_unknown_key_names_the_closest():
    with pytest.raises(TrainerConfigError, match=r"'epoch' \(did you mean 'epochs'\?\)"):
        resolve_trainer_config({"epoch": 3})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("epochs", 0),
        ("batch_size", 2.5),
        ("schedule", "poly"),
        ("amp", "fp8"),
        ("lr_steps", [10, -1]),
        ("clip_grad", 0),
        ("channels_last", "yes"),
        ("max_steps_per_epoch", 0),
        ("batchnorm", "group"),
        ("deterministic", 1),
    ],
)
def test_invalid_values_name_key_and_value(key, value):
    with pytest.raises(TrainerConfigError, match=f"trainer.{key} = "):
        resolve_trainer_config({key: value})


def test_lr_steps_sorted():
    assert resolve_trainer_config({"lr_steps": [51, 41]})["lr_steps"] == [41, 51]


def test_cpu_choices():
    cfg = resolve_trainer_config({"device": "cpu"})
    assert resolve_device(cfg) == CPU
    assert amp_dtype(cfg, CPU) is None  # auto: none on CPU
    assert amp_dtype({**cfg, "amp": "bf16"}, CPU) is torch.bfloat16
    assert use_channels_last(cfg, CPU) is True  # auto: faster on CPU too (benchmarks/model_step.py)
    assert use_channels_last({**cfg, "channels_last": False}, CPU) is False
    with pytest.raises(TrainerConfigError, match="fp16.*needs CUDA"):
        amp_dtype({**cfg, "amp": "fp16"}, CPU)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_requested_without_cuda():
    with pytest.raises(TrainerConfigError, match="no CUDA device"):
        resolve_device(resolve_trainer_config({"device": "cuda"}))


def test_whole_config_checks(synthetic_root):
    with pytest.raises(TrainerConfigError, match="unknown config section"):
        resolve_config({"data": {}, "optimizer": {}})
    with pytest.raises(TrainerConfigError, match="seed"):
        resolve_config({"data": {}, "seed": "1"})
    with pytest.raises(TrainerConfigError, match=r"data.num_segments = 8 but the model"):
        resolve_config({"model": {"num_segments": 4}, "data": {"num_segments": 8}})
    with pytest.raises(TrainerConfigError, match=r"data.crop_size = 224 but model.input_size needs 64"):
        resolve_config({"model": {"input_size": 64}, "data": {"crop_size": 224}})
    resolved = resolve_config({"model": {"num_segments": 4, "modality": "rgb_lmc", "input_size": 64}, "data": {}})
    assert {k: resolved["data"][k] for k in ("num_segments", "frames_per_segment", "crop_size")} == {
        "num_segments": 4,
        "frames_per_segment": 5,
        "crop_size": 64,
    }
