"""The motion modules (``MOTIONS``): chosen by ``model.modality``, built, keyed and checked like the other parts."""

from __future__ import annotations

import pytest
import torch

from ean.models import MOTIONS, ModelConfigError, build_model, check_model_config, frames_per_segment
from ean.models.identity import network_identity
from ean.models.rgb_difference import RGBDifference

SMALL = {"backbone": "resnet18", "num_segments": 2, "num_classes": 5, "input_size": 64, "block_stages": [2]}


@pytest.mark.parametrize("name", MOTIONS.names())
def test_every_motion_module_maps_a_segment_to_the_stem_grid_and_trains_in_the_network(name):
    torch.manual_seed(0)
    model = build_model({**SMALL, "modality": f"rgb_{name}"})
    length = frames_per_segment({**SMALL, "modality": f"rgb_{name}"})
    assert length == MOTIONS.get(name).FRAMES_PER_SEGMENT > 1
    clips = torch.randn(2, 2, length, 3, 64, 64)
    assert model.lmc(clips.flatten(0, 1)).shape == (4, 64, 16, 16)  # (N*T, C1, H/4, W/4), the stem's output
    model(clips).logsumexp(dim=1).sum().backward()
    grads = [p.grad for p in model.lmc.parameters() if p.grad is not None]
    assert grads and any(bool(g.abs().sum() > 0) for g in grads)


def test_rgb_difference_adds_nothing_until_it_learns_motion():
    torch.manual_seed(0)
    module = RGBDifference()
    frames = torch.randn(3, 5, 3, 64, 64)
    assert torch.count_nonzero(module(frames)) == 0
    target = torch.randn(3, 64, 16, 16)
    (module(frames) - target).pow(2).mean().backward()
    assert module.project.weight.grad.abs().sum() > 0
    torch.optim.SGD(module.parameters(), lr=1.0).step()
    assert torch.count_nonzero(module(frames)) > 0
    still = torch.randn(1, 1, 3, 64, 64).expand(1, 5, 3, 64, 64)  # the same frame five times: no motion
    assert torch.equal(module(still), module(torch.zeros(1, 5, 3, 64, 64)))


def test_another_motion_module_is_its_own_network_and_the_lmc_keeps_its_key_field():
    lmc = network_identity({**SMALL, "modality": "rgb_lmc"})
    diff = network_identity({**SMALL, "modality": "rgb_diff"})
    rgb = network_identity(SMALL)
    assert lmc["lmc"]["frames_per_segment"] == 5 and "motion" not in lmc  # the field the published keys hash
    assert diff["lmc"] is None and diff["motion"] == {
        "name": "diff",
        "options": {"hidden": 64, "zero_init": True, "frames_per_segment": 5},
    }
    assert "motion" not in rgb and rgb["lmc"] is None
    assert network_identity({**SMALL, "modality": "rgb_diff", "motion_options": {"hidden": 64}}) == diff
    assert network_identity({**SMALL, "modality": "rgb_diff", "motion_options": {"hidden": 32}}) != diff


def test_motion_options_the_module_owns_or_a_renamed_key_are_refused_by_name():
    with pytest.raises(ModelConfigError, match=r"motion 'lmc' options \['out_channels'\] are not accepted"):
        check_model_config({**SMALL, "modality": "rgb_lmc", "motion_options": {"out_channels": 32}})
    with pytest.raises(ModelConfigError, match=r"motion 'diff' options \['latent'\] are not accepted; valid "):
        check_model_config({**SMALL, "modality": "rgb_diff", "motion_options": {"latent": 32}})
    assert check_model_config({**SMALL, "motion_options": {"latent": 1}})["modality"] == "rgb"  # never read


def test_a_config_saved_with_the_old_lmc_options_reads_as_motion_options():
    """Runs trained before the motion family saved ``lmc_options``: their configs still build and key alike."""
    old = {**SMALL, "modality": "rgb_lmc", "lmc_options": {"patch": 32}}
    new = {**SMALL, "modality": "rgb_lmc", "motion_options": {"patch": 32}}
    assert check_model_config(old)["motion_options"] == {"patch": 32} and "lmc_options" not in check_model_config(old)
    assert network_identity(old) == network_identity(new) != network_identity({**SMALL, "modality": "rgb_lmc"})
    with pytest.raises(ModelConfigError, match=r"model.lmc_options is now model.motion_options: give the options once"):
        check_model_config({**new, "lmc_options": {"latent": 128}})


def test_a_motion_variant_registered_same_as_another_is_that_network(monkeypatch):
    from ean.models.lmc import LatentMotionCode
    from ean.trial import check_trial_config

    class BigPatches(LatentMotionCode):  # the LMC with patches of 32, under a name of its own
        def __init__(self, frames_per_segment: int = 5, out_channels: int = 64, latent: int = 256):
            super().__init__(frames_per_segment, out_channels, latent=latent, patch=32)

    class NoFrames(torch.nn.Module):
        def __init__(self, frames_per_segment: int, out_channels: int):
            super().__init__()

    monkeypatch.setitem(MOTIONS._entries, "lmc32", BigPatches)
    monkeypatch.setitem(MOTIONS._same_as, "lmc32", ("lmc", {"patch": 32}))
    monkeypatch.setitem(MOTIONS._entries, "noframes", NoFrames)
    same = network_identity({**SMALL, "modality": "rgb_lmc32"})
    assert same == network_identity({**SMALL, "modality": "rgb_lmc", "motion_options": {"patch": 32}})
    data = {"dataset": "synthetic", "root": "x", "frames_per_segment": 5, "num_classes": 5, "test_crop_size": 96}
    config = {"model": {**SMALL, "modality": "rgb_lmc32"}, "data": data, "trainer": {"batch_size": 2}, "seed": 0}
    found = check_trial_config(config, require_files=False)
    assert any("the motion module 'lmc' needs a multiple of 64 (patch 32, downsample 2)" in f for f in found), found
    with pytest.raises(ModelConfigError, match=r"motion 'noframes' \(.*NoFrames\) states no FRAMES_PER_SEGMENT"):
        check_model_config({**SMALL, "modality": "rgb_noframes"})


def test_the_data_must_give_a_motion_module_its_frames():
    from ean.train.build import TrainerConfigError, resolve_config

    data = {"dataset": "synthetic", "root": "x", "frames_per_segment": 1}
    config = {"model": {**SMALL, "modality": "rgb_diff"}, "data": data, "trainer": {}}
    with pytest.raises(TrainerConfigError, match=r"data.frames_per_segment = 1 but the model \(rgb_diff\) needs 5"):
        resolve_config(config)
