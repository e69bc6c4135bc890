"""network_identity: one identity per network as built, whatever the config spells differently."""

from __future__ import annotations

import pytest

from ean.models import BLOCKS, network_identity
from ean.registry import Registry

TINY = {"backbone": "resnet18", "num_segments": 4, "input_size": 64, "num_classes": 5}


def identity(**changes):
    return network_identity({**TINY, **changes})


def test_a_variant_registered_same_as_another_is_that_one():
    assert identity(block="incep_block") == identity(block="eab", fusion="identity")
    assert identity(block="incep_block", fusion="dynamic") == identity(block="incep_block", fusion="static")
    assert identity(block="eab", fusion="dynamic") != identity(block="eab", fusion="identity")
    assert BLOCKS.canonical("incep_block", {"pool": "avg"}) == ("eab", {"pool": "avg", "fusion": "identity"})


def test_defaults_written_out_and_options_never_read_are_the_same_network():
    assert identity(block="s_block") == identity(block="s_block", fusion="static")
    assert identity(block="eab", block_options={"pool": "max", "dilation": True}) == identity(block="eab")
    assert identity(block="eab", block_options={"pool": "avg"}) != identity(block="eab")
    assert identity(modality="rgb", motion_options={"latent": 128}) == identity(modality="rgb")
    assert identity(modality="rgb_lmc", motion_options={"latent": 128}) != identity(modality="rgb_lmc")


def test_parts_not_built_leave_no_options():
    assert identity(block="none", fusion="static") == identity(block="none")
    assert identity(block="eab", block_stages=[]) == identity(block="none")
    assert identity(regions="none", num_regions=8, soi_options={"depth": 3}) == identity(regions="none")
    assert identity(regions="saliency", num_regions=8) != identity(regions="saliency")


def test_weights_are_named_by_content_not_location(tmp_path):
    import torch

    a, b = tmp_path / "a.pth", tmp_path / "b" / "same.pth"
    b.parent.mkdir()
    torch.save({"w": torch.ones(2)}, a)
    b.write_bytes(a.read_bytes())
    assert identity(pretrained=str(a)) == identity(pretrained=str(b))
    assert identity(pretrained=str(a))["pretrained"].startswith("sha256:")
    torch.save({"w": torch.zeros(2)}, b)
    assert identity(pretrained=str(a)) != identity(pretrained=str(b))
    assert identity(pretrained="imagenet1k_v1")["pretrained"] == "torchvision:IMAGENET1K_V1"


def test_same_as_must_name_a_registered_variant():
    registry = Registry("thing", contract="thing()")
    registry.add("base", lambda: None)
    registry.add("alias", lambda: None, same_as=("base", {"x": 1}))
    assert registry.canonical("alias", {}) == ("base", {"x": 1})
    with pytest.raises(LookupError, match="unknown thing 'nowhere'"):
        registry.add("broken", lambda: None, same_as=("nowhere", {}))


def test_fusion_options_name_a_network_only_where_they_differ_from_the_defaults():
    paper_m = {"identity_init": False}
    assert identity(fusion_options={"identity_init": True}) == identity()  # the default written out
    assert identity(fusion_options=paper_m) != identity()
    assert identity(fusion_options=paper_m)["blocks"]["fusion_options"] == paper_m
    assert identity(block="s_block", fusion_options=paper_m) == identity(block="s_block")  # no fusion to read it


def test_the_papers_dynamic_m_builds_without_the_identity_and_bad_fusion_options_are_refused():
    from ean.models import build_model
    from ean.models.fusion.dynamic import DynamicFusion

    model = build_model({**TINY, "fusion_options": {"identity_init": False}})
    fusions = [m for m in model.modules() if isinstance(m, DynamicFusion)]
    assert fusions and not any(f.identity_init for f in fusions)
    with pytest.raises(ValueError, match="fusion 'dynamic' options \\['identity'\\].*valid options: identity_init"):
        build_model({**TINY, "fusion_options": {"identity": False}})
