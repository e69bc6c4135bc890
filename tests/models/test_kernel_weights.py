"""Fig. 10's kernel weights: sums of the fusion matrix over the kernels' channel groups."""

import pytest
import torch

from ean.models import build_model
from ean.models.kernel_weights import (
    adds_identity,
    fusion_matrix,
    kernel_weight_variants,
    kernel_weights,
    zoomed,
)

TINY = {"backbone": "resnet18", "num_segments": 4, "input_size": 64, "num_classes": 5, "regions": "none"}


def test_static_identity_matrix_gives_each_kernel_its_group_size():
    model = build_model({**TINY, "fusion": "static"})  # M = I at initialisation
    weights = kernel_weights(model, torch.randn(2, 4, 1, 3, 64, 64), stage=2)
    c = model.blocks["2"].fusion.channels  # 64 / 4 = 16 -> groups 5, 5, 6
    assert c == 16
    expected = torch.tensor([[5.0, 5.0, 6.0]] * 2)
    torch.testing.assert_close(weights["spatial"], expected)
    torch.testing.assert_close(weights["temporal"], expected)


def test_sums_follow_rows_for_spatial_and_columns_for_temporal():
    model = build_model({**TINY, "fusion": "static"})
    fusion = model.blocks["2"].fusion
    with torch.no_grad():
        fusion.weight.zero_()
        fusion.weight[0, 10] = 2.0  # row 0: spatial kernel 1; column 10: temporal kernel 5
    weights = kernel_weights(model, torch.randn(1, 4, 1, 3, 64, 64), stage=2)
    assert weights["spatial"][0].tolist() == [2.0, 0.0, 0.0]
    assert weights["temporal"][0].tolist() == [0.0, 0.0, 2.0]


def test_variants_and_transforms():
    clip = torch.arange(4.0).view(1, 4, 1, 1, 1, 1).expand(1, 4, 1, 3, 64, 64).contiguous()
    assert zoomed(clip).shape == clip.shape
    model = build_model(TINY)  # dynamic M
    anchor, fast = torch.randn(1, 4, 1, 3, 64, 64), torch.randn(1, 4, 1, 3, 64, 64)
    out = kernel_weight_variants(model, anchor, fast, stage=3)
    assert set(out) == {"anchor", "zoom_1.6x", "fps_2x"}
    assert all(len(v["spatial"]) == 3 and len(v["temporal"]) == 3 for v in out.values())
    assert out["fps_2x"] == {k: v[0].tolist() for k, v in kernel_weights(model, fast, stage=3).items()}
    with pytest.raises(ValueError, match="fast_clip has shape"):
        kernel_weight_variants(model, anchor, fast[:, :2], stage=3)


def test_minus_identity_removes_exactly_the_identity_the_fusion_adds():
    clip = torch.randn(1, 4, 1, 3, 64, 64)
    model = build_model(TINY)  # dynamic M = I + ESP-Net output (identity_init)
    assert adds_identity(model, 3)
    raw, learned = fusion_matrix(model, clip, 3), fusion_matrix(model, clip, 3, minus_identity=True)
    torch.testing.assert_close(raw - learned, torch.eye(raw.shape[-1]).expand_as(raw))
    raw_w, learned_w = kernel_weights(model, clip, 3), kernel_weights(model, clip, 3, minus_identity=True)
    sizes = torch.tensor([[10.0, 10.0, 12.0]])  # C' = 128 / 4 = 32 -> groups 10, 10, 12
    torch.testing.assert_close(raw_w["spatial"] - learned_w["spatial"], sizes)
    torch.testing.assert_close(raw_w["temporal"] - learned_w["temporal"], sizes)
    for options in ({"fusion_options": {"identity_init": False}}, {"fusion": "static"}):
        other = build_model({**TINY, **options})  # M as predicted, or one learned M: nothing to subtract
        assert not adds_identity(other, 3)
        torch.testing.assert_close(fusion_matrix(other, clip, 3), fusion_matrix(other, clip, 3, minus_identity=True))


def test_blocks_without_a_matrix_are_refused():
    model = build_model({**TINY, "fusion": "identity"})
    with pytest.raises(ValueError, match="no fusion matrix"):
        kernel_weights(model, torch.randn(1, 4, 1, 3, 64, 64), stage=2)


def test_a_block_has_a_matrix_by_what_its_fusion_does_not_by_its_name(monkeypatch):
    from ean.models.fusion.static import StaticFusion
    from ean.models.kernel_weights import config_has_matrix
    from ean.models.registries import FUSIONS
    from reports.kernels import has_matrix_eab

    class HalfStatic(StaticFusion):  # a researcher's fusion with a matrix of its own
        def matrix(self, context: torch.Tensor) -> torch.Tensor:
            return 0.5 * super().matrix(context)

    monkeypatch.setitem(FUSIONS._entries, "half_static", HalfStatic)
    assert config_has_matrix("eab", "half_static") and config_has_matrix("eab", "dynamic")
    assert not config_has_matrix("eab", "identity") and not config_has_matrix("eab", "shuffle")
    assert not config_has_matrix("incep_block", "static")  # the EAB with M = I, whatever fusion is named
    assert not config_has_matrix("s_block", "static") and not config_has_matrix("no_such_block", "static")
    resolved = {"block": "eab", "fusion": "half_static", "block_options": {}, "block_stages": [1, 2, 3, 4]}
    assert has_matrix_eab(resolved, 4) and not has_matrix_eab(resolved, 5)
    model = build_model({**TINY, "fusion": "half_static"})
    weights = kernel_weights(model, torch.randn(1, 4, 1, 3, 64, 64), stage=2)
    torch.testing.assert_close(weights["spatial"], torch.tensor([[2.5, 2.5, 3.0]]))
