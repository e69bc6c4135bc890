"""ean.trial: what the trial key holds of the device count."""

from __future__ import annotations

import pytest

from ean.trial import trial_key

CONFIG = {
    "model": {"backbone": "resnet18", "num_segments": 4, "input_size": 64, "num_classes": 10, "block": "none"},
    "data": {"dataset": "synthetic", "root": "data/synthetic", "num_videos": 20, "num_classes": 10},
    "trainer": {"batch_size": 8, "per_device_batch": 4},
    "seed": 0,
}


def keys(batchnorm: str) -> dict[int, str]:
    config = {**CONFIG, "trainer": {**CONFIG["trainer"], "batchnorm": batchnorm}}
    return {devices: trial_key(config, devices, fingerprint="sha256:0") for devices in (1, 2)}


@pytest.mark.parametrize("batchnorm", ["train", "frozen"])
def test_the_device_count_is_not_in_the_key_where_it_changes_nothing_trained(batchnorm):
    """1 device x 2 passes and 2 devices x 1 pass train the same passes (ean.data.global_batches)."""
    one, two = keys(batchnorm).values()
    assert one == two


def test_synchronised_batchnorm_keys_the_batch_its_statistics_span():
    """SyncBatchNorm normalises 2 devices' passes of 4 clips together (8 clips), one device's pass alone (4)."""
    one, two = keys("sync").values()
    assert one != two
    assert keys("train")[1] == one  # on one device there is nothing to synchronise: plain BatchNorm, as train
    assert keys("train")[2] != two


def key_of(**trainer) -> str:
    return trial_key({**CONFIG, "trainer": {**CONFIG["trainer"], **trainer}}, 1, fingerprint="sha256:0")


def test_the_key_holds_the_precision_the_trial_computes_in(monkeypatch):
    """``amp: auto`` is full precision on a CPU and bf16 on a GPU: two computations, two keys."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert key_of(amp="auto") == key_of(amp="none") == key_of(amp="auto", device="cpu")
    assert key_of(amp="auto", device="cuda") == key_of(amp="bf16") != key_of(amp="none")
    assert key_of(amp="fp16", device="cuda") not in {key_of(amp="bf16"), key_of(amp="none")}
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert key_of(amp="auto") == key_of(amp="bf16", device="cpu")


def test_the_device_is_not_in_the_key_where_the_precision_is_the_same(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert key_of(amp="none", device="cuda") == key_of(amp="none", device="cpu") == key_of(amp="none")


def test_a_number_written_as_int_or_float_is_one_recipe():
    assert key_of(clip_grad=20) == key_of(clip_grad=20.0) != key_of(clip_grad=20.5)
    assert key_of(warmup_epochs=0) == key_of(warmup_epochs=0.0)
    scales = {**CONFIG, "data": {**CONFIG["data"], "scales": [1, 0.875]}}
    floats = {**CONFIG, "data": {**CONFIG["data"], "scales": [1.0, 0.875]}}
    assert trial_key(scales, 1, fingerprint="sha256:0") == trial_key(floats, 1, fingerprint="sha256:0")
    assert key_of(deterministic=True) != key_of(deterministic=False)  # a bool is not a number here


def test_settings_that_change_nothing_computed_are_not_in_the_key():
    """The step schedule's settings under a cosine, the test crop written as the training crop it defaults to,
    and the bad-file fraction at which a run gives up (a run that finishes skipped the same files)."""
    assert key_of(schedule="cosine", lr_steps=[1], lr_gamma=0.5) == key_of(schedule="cosine")
    assert key_of(schedule="step", lr_steps=[1]) != key_of(schedule="step", lr_steps=[2])

    def data_key(**data) -> str:
        return trial_key({**CONFIG, "data": {**CONFIG["data"], **data}}, 1, fingerprint="sha256:0")

    assert data_key(crop_size=64, test_crop_size=64) == data_key(crop_size=64)
    assert data_key(crop_size=64, test_crop_size=56) != data_key(crop_size=64)
    assert data_key(max_bad_fraction=0.5) == data_key()


def test_spellings_of_one_computation_are_one_key():
    """``channels_last: true`` is what ``auto`` does everywhere; an RGB model sees one frame per segment, the
    first and the middle one alike. Where they differ, the keys do."""
    assert key_of(channels_last=True) == key_of(channels_last="auto") != key_of(channels_last=False)

    def model_key(**model) -> str:
        return trial_key({**CONFIG, "model": {**CONFIG["model"], **model}}, 1, fingerprint="sha256:0")

    assert model_key(rgb_frame="first") == model_key(rgb_frame="middle") == model_key()
    lmc = {"modality": "rgb_lmc"}
    assert model_key(rgb_frame="first", **lmc) != model_key(rgb_frame="middle", **lmc) == model_key(**lmc)


def test_data_keys_the_model_decides_are_keyed_as_the_trial_fills_them():
    """A data section that leaves out the crop size trains and tests at the model's input size (64 here): its
    key is the one of that crop written out, and differs from a test crop of 224 (the data's own default)."""

    def data_key(**data) -> str:
        return trial_key({**CONFIG, "data": {**CONFIG["data"], **data}}, 1, fingerprint="sha256:0")

    assert data_key() == data_key(crop_size=64) == data_key(crop_size=64, test_crop_size=64)
    assert data_key() != data_key(test_crop_size=224)
    assert data_key() == data_key(num_segments=4, frames_per_segment=1)


def test_the_region_count_is_keyed_only_where_it_decides_the_regions():
    """Every position is a token with ``regions: all``: ``num_regions`` decides nothing there."""

    def model_key(**model) -> str:
        return trial_key({**CONFIG, "model": {**CONFIG["model"], **model}}, 1, fingerprint="sha256:0")

    assert model_key(regions="all", num_regions=4) == model_key(regions="all", num_regions=8)
    assert model_key(regions="saliency", num_regions=4) != model_key(regions="saliency", num_regions=8)


def test_the_flip_rule_is_keyed_only_where_clips_are_flipped():
    def data_key(**data) -> str:
        return trial_key({**CONFIG, "data": {**CONFIG["data"], **data}}, 1, fingerprint="sha256:0")

    assert data_key(flip=False, flip_rule="skip") == data_key(flip=False)
    assert data_key(flip=True, flip_rule="skip") != data_key(flip=True)
