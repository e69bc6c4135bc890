"""The model library: every paper row (of the study specs) trains, the identities of the paper hold, weights load."""

import pytest
import torch
import torchvision

from ean.models import BLOCKS, FUSIONS, REGIONS, ModelConfigError, build_model, frames_per_segment
from ean.models.pretrained import load_pretrained
from tests.paper_specs import distinct_model_rows

SMALL = {"input_size": 64}  # a multiple of 32 keeps every stage's shape; fast on CPU
TINY = {"backbone": "resnet18", "num_segments": 4, "input_size": 64, "num_classes": 10}


def clip_for(config: dict, clips: int) -> torch.Tensor:
    size = config.get("input_size", 224)
    return torch.randn(clips, config.get("num_segments", 8), frames_per_segment(config), 3, size, size)


def train_step(config: dict, clips: int, steps: int = 2) -> torch.nn.Module:
    """Trains ``steps`` SGD steps; returns the model with the last step's gradients.

    Two steps: zero-initialised gates (the SOI-Tr's output scale) pass gradients on from the second.
    """
    torch.manual_seed(0)
    model = build_model(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = clip_for(config, clips)
    for _ in range(steps):
        optimizer.zero_grad()
        logits = model(x)
        assert logits.shape == (clips, config.get("num_classes", 174))
        logits.logsumexp(dim=1).sum().backward()
        optimizer.step()
    return model


def assert_every_parameter_has_a_gradient(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"parameters without gradient: {missing}"


PAPER_MODELS = distinct_model_rows()  # the first row of each distinct model config of the paper's specs


@pytest.mark.slow
@pytest.mark.parametrize("row", PAPER_MODELS, ids=[r.name for r in PAPER_MODELS])
def test_every_paper_row_trains_with_gradients_everywhere(row):
    """Each row trains at one clip (train mode, BatchNorm over one clip's frames) and at two clips."""
    config = row.model  # the spec row's model as the runner composes it, with random weights
    for clips in (1, 2):
        model = train_step({**config, **SMALL}, clips)
        assert_every_parameter_has_a_gradient(model)


@pytest.mark.parametrize("block", BLOCKS.names())
@pytest.mark.parametrize("clips", [1, 2])
def test_every_block_trains(block, clips):
    model = train_step({**TINY, "block": block, "regions": "none"}, clips)
    assert_every_parameter_has_a_gradient(model)


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_trains(fusion):
    assert_every_parameter_has_a_gradient(train_step({**TINY, "fusion": fusion, "regions": "none"}, 2))


@pytest.mark.parametrize("regions", REGIONS.names())
def test_every_region_strategy_trains_with_one_clip(regions):
    model = train_step({**TINY, "block": "none", "regions": regions}, 1)
    assert_every_parameter_has_a_gradient(model)
    assert bool(model.sois) == (regions != "none")


def test_rgb_lmc_takes_five_frames_per_segment():
    config = {**TINY, "modality": "rgb_lmc"}
    assert frames_per_segment(config) == 5
    assert_every_parameter_has_a_gradient(train_step(config, 2))


def test_identity_fusion_eab_computes_what_incep_block_computes():
    torch.manual_seed(0)
    eab = BLOCKS.build("eab", channels=64, num_segments=4, fusion="identity")
    incep = BLOCKS.build("incep_block", channels=64, num_segments=4)
    incep.load_state_dict(eab.state_dict())  # same keys: identity fusion has no parameters
    x = torch.randn(8, 64, 14, 14)
    eab.eval(), incep.eval()
    torch.testing.assert_close(eab(x), incep(x), rtol=0, atol=0)


def test_static_fusion_gives_the_same_matrix_for_every_input():
    fusion = FUSIONS.build("static", channels=16, num_segments=4)
    with torch.no_grad():
        fusion.weight.add_(torch.randn(16, 16))
    a = fusion.matrix(torch.randn(8, 16, 7, 7))
    b = fusion.matrix(torch.randn(8, 16, 7, 7) * 5 + 3)
    assert a.shape == (2, 16, 16)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[0], a[1])


def test_dynamic_fusion_matrix_depends_on_the_input():
    torch.manual_seed(0)
    fusion = FUSIONS.build("dynamic", channels=64, num_segments=4).eval()
    with torch.no_grad():
        fusion.esp.fc.weight.normal_()
        m = fusion.matrix(torch.randn(8, 64, 14, 14))
    assert m.shape == (2, 64, 64)
    assert not torch.allclose(m[0], m[1])


def test_shuffle_fusion_is_a_permutation_that_interleaves_groups():
    fusion = FUSIONS.build("shuffle", channels=16, num_segments=4)
    assert sorted(fusion.permutation.tolist()) == list(range(16))
    assert fusion.permutation[:3].tolist() == [0, 5, 10]  # groups of 5, 5, 6: one channel of each
    x = torch.arange(16.0).view(1, 16, 1, 1).expand(4, 16, 2, 2)
    assert fusion(x, x)[0, :3, 0, 0].tolist() == [0.0, 5.0, 10.0]


def test_new_blocks_and_soi_tr_leave_the_backbone_output_nearly_unchanged():
    base_cfg = {**SMALL, "block": "none", "regions": "none", "num_segments": 4}
    torch.manual_seed(0)
    base = build_model(base_cfg).eval()
    full = build_model({**base_cfg, "block": "eab", "regions": "saliency"}).eval()
    full.backbone.load_state_dict(base.backbone.state_dict())
    x = clip_for(base_cfg, 2)
    with torch.no_grad():
        ref, out = base.features(x), full.features(x)
    rel = (out - ref).norm() / ref.norm()
    assert rel < 0.02, f"inserted parts change the backbone's features by {rel:.3%}"
    soi_only = build_model({**base_cfg, "regions": "saliency"}).eval()
    soi_only.backbone.load_state_dict(base.backbone.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(soi_only.features(x), ref)  # the SOI-Tr starts as the identity exactly


def test_8f_and_16f_share_one_implementation():
    m8 = build_model({**SMALL, "num_segments": 8})
    m16 = build_model({**SMALL, "num_segments": 16})
    s8, s16 = m8.state_dict(), m16.state_dict()
    assert s8.keys() == s16.keys()
    differing = [k for k in s8 if s8[k].shape != s16[k].shape]
    assert differing == ["sois.5.pos_embed"]  # only the positional embedding has a time axis
    s8 = {k: v for k, v in s8.items() if k not in differing}
    assert m16.load_state_dict(s8, strict=False).unexpected_keys == []


def test_torchvision_resnet50_state_dict_loads_into_every_backbone_key(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    model = build_model({**SMALL, "block": "none", "regions": "none"})
    report = load_pretrained(model.backbone, str(path), "resnet50")
    assert report.unexpected == ["fc.weight", "fc.bias"] and not report.mismatched
    assert all(".me." in k or ".tconv." in k for k in report.missing), report.missing
    reference = torch.load(path, weights_only=True)
    torch.testing.assert_close(model.backbone.layer3[2].conv2.weight, reference["layer3.2.conv2.weight"])


def test_pretrained_through_the_config(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": torchvision.models.resnet18(weights=None).state_dict()}, path)
    model = build_model({**TINY, "pretrained": str(path)})
    reference = torch.load(path, weights_only=True)["state_dict"]
    torch.testing.assert_close(model.backbone.conv1.weight, reference["conv1.weight"])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"blok": "eab"}, "unknown model key 'blok' (did you mean 'block'?)"),
        ({"block": "eab_block"}, "unknown block 'eab_block'"),
        ({"fusion": "dynamc"}, "Did you mean 'dynamic'?"),
        ({"regions": "detector"}, "Valid regions names: all, fasterrcnn, fixed, none, saliency"),
        ({"block_stages": [0, 2]}, "model.block_stages"),
        ({"modality": "flow"}, "valid: rgb, rgb_diff, rgb_lmc"),
        ({"block_options": {"pooling": "max"}}, "options ['pooling'] are not accepted; valid options: pool"),
        ({"input_size": 100}, "multiple of 32"),
        ({"dropout": "abc"}, "model.dropout = 'abc'; must be a number in [0, 1)"),
        ({"dropout": 1.0}, "model.dropout = 1.0; must be a number in [0, 1)"),
        ({"block": [1]}, "model.block = [1]; must be a name (text)"),
        ({"pretrained": 3}, "model.pretrained = 3; must be null"),
        ({"block_options": 3}, "model.block_options = 3; must be a mapping"),
        ({"motion_excitation": "yes"}, "model.motion_excitation = 'yes'; must be true or false"),
        ({"modality": "rgb_lmc", "motion_options": {"patch": "abc"}}, "motion 'lmc' option patch = 'abc'; must be int"),
        ({"modality": "rgb_lmc", "motion_options": {"patch": True}}, "motion 'lmc' option patch = True; must be int"),
    ],
)
def test_bad_model_configs_name_the_problem(config, message):
    with pytest.raises(ValueError) as info:
        build_model({**TINY, **config})
    assert message in str(info.value)
    assert isinstance(info.value, ModelConfigError | LookupError)


def test_build_model_reads_the_model_section_of_a_full_config():
    model = build_model({"model": TINY, "data": {"dataset": "synthetic"}})
    assert model.fc.out_features == 10 and model.num_segments == 4


def test_a_fusion_must_be_a_fusion_to_register():
    """The EAB asks a fusion for its matrix (``Fusion.matrix``): a module that is not one is refused when it
    registers, not when a trial builds it."""
    from ean.registry import ContractError

    with pytest.raises(ContractError, match="must subclass Fusion"):
        FUSIONS.register("not_a_fusion")(torch.nn.Identity)
    assert "not_a_fusion" not in FUSIONS.names()
