"""TSM as a variant of the backbone (``model.temporal_conv: shift``, ``studies/conf/model/tsm8f.yaml``): the fixed
temporal shift, where it sits in a block, and a TSM network that trains."""

import pytest
import torch

from ean.models import ModelConfigError, build_model, network_identity
from ean.models.backbone import BasicBlock, Bottleneck
from ean.models.temporal import DepthwiseTemporalConv, TemporalShift
from ean.profile import profile_model
from tests.models.test_model import TINY, assert_every_parameter_has_a_gradient, train_step
from tests.paper_specs import paper_rows

TSM = {"temporal_conv": "shift", "motion_excitation": False, "block": "none", "regions": "none"}
TSN = {**TSM, "temporal_conv": False}


def test_shift_moves_an_eighth_of_the_channels_each_way_and_keeps_the_rest():
    shift = TemporalShift(16, num_segments=4)
    x = torch.randn(2 * 4, 16, 3, 3)
    y = shift(x).view(2, 4, 16, 3, 3)
    clips = x.view(2, 4, 16, 3, 3)
    assert shift.fold == 2  # 16 / 8
    torch.testing.assert_close(y[:, :-1, :2], clips[:, 1:, :2])  # 1/8: frame t takes frame t + 1 (back in time)
    assert not y[:, -1, :2].any()  # ... and the last frame reads zeros
    torch.testing.assert_close(y[:, 1:, 2:4], clips[:, :-1, 2:4])  # 1/8: frame t takes frame t - 1 (forward)
    assert not y[:, 0, 2:4].any()
    torch.testing.assert_close(y[:, :, 4:], clips[:, :, 4:], rtol=0, atol=0)  # 6/8 unchanged


def test_shift_has_no_parameters_and_equals_the_learned_conv_at_initialisation():
    shift = TemporalShift(64, num_segments=8)
    assert list(shift.parameters()) == [] and list(shift.buffers()) == [] and shift.state_dict() == {}
    x = torch.randn(16, 64, 4, 4)
    torch.testing.assert_close(shift(x), DepthwiseTemporalConv(64, num_segments=8)(x))
    x.requires_grad_(True)
    shift(x).sum().backward()  # the gradient flows back through the move
    assert x.grad.view(2, 8, 64, 4, 4)[:, 0, :8].eq(0).all()  # frame 0 of the first fold feeds nothing
    assert x.grad.view(2, 8, 64, 4, 4)[:, :, 16:].eq(1).all()


@pytest.mark.parametrize(("block", "in_channels", "width"), [(Bottleneck, 64, 16), (BasicBlock, 16, 16)])
def test_the_shift_sits_on_the_residual_branch_before_conv1(block, in_channels, width):
    """TSM's "residual shift": conv1 reads the shifted input, the identity path the unshifted one."""
    torch.manual_seed(0)
    shift = TemporalShift(in_channels, num_segments=4)
    tsm = block(in_channels, width, 1, 4, {"shift": shift}).eval()
    plain = block(in_channels, width, 1, 4, {}).eval()
    plain.load_state_dict(tsm.state_dict())  # the shift adds no keys: the same weights fit both
    x = torch.randn(8, in_channels, 5, 5)
    branch = _residual_branch(plain, shift(x))
    torch.testing.assert_close(tsm(x), torch.relu(branch + x))
    assert tsm.me is None and tsm.tconv is None


def _residual_branch(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        return block.bn3(block.conv3(out))
    return block.bn2(block.conv2(out))


def test_a_tsm_network_has_a_shift_in_every_block_and_the_parameters_and_flops_of_tsn():
    model = build_model({**TINY, **TSM})
    blocks = [b for k in range(1, 5) for b in getattr(model.backbone, f"layer{k}")]
    assert all(isinstance(b.shift, TemporalShift) and b.me is None and b.tconv is None for b in blocks)
    assert [b.shift.channels for b in blocks] == [b.conv1.in_channels for b in blocks]
    assert not model.blocks and not model.sois
    tsm, tsn = profile_model({**TINY, **TSM}), profile_model({**TINY, **TSN})
    assert (tsm.params, tsm.macs) == (tsn.params, tsn.macs)  # the shift is free
    assert network_identity({**TINY, **TSM}) != network_identity({**TINY, **TSN})


def test_a_tsm_network_trains():
    model = train_step({**TINY, **TSM}, clips=2, steps=1)
    assert_every_parameter_has_a_gradient(model)


def test_temporal_conv_takes_true_false_or_shift():
    with pytest.raises(ModelConfigError, match="valid: true .*false, 'shift'"):
        build_model({**TINY, "temporal_conv": "tsm"})


def test_the_tsm8f_group_is_resnet50_8f_with_the_shift_and_nothing_else():
    (row,) = [r for r in paper_rows() if r.name == "table3/tsm8f"]
    model = row.model
    assert model["temporal_conv"] == "shift" and model["motion_excitation"] is False
    assert (model["block"], model["regions"]) == ("none", "none")
    assert (model["backbone"], model["num_segments"], model["modality"]) == ("resnet50", 8, "rgb")
    assert row.config["model"]["pretrained"] == "imagenet1k_v1"
