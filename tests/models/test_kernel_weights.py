"""Fig. 10's kernel weights: sums of the fusion matrix over the kernels' channel groups."""

import pytest
import torch

from ean.models import build_model
from ean.models.kernel_weights import faster_frame_rate, kernel_weight_variants, kernel_weights, zoomed

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
    assert faster_frame_rate(clip)[0, :, 0, 0, 0, 0].tolist() == [1.0, 1.0, 2.0, 2.0]
    assert zoomed(clip).shape == clip.shape
    model = build_model(TINY)  # dynamic M
    out = kernel_weight_variants(model, torch.randn(1, 4, 1, 3, 64, 64), stage=3)
    assert set(out) == {"anchor", "zoom_1.6x", "fps_2x"}
    assert all(len(v["spatial"]) == 3 and len(v["temporal"]) == 3 for v in out.values())


def test_blocks_without_a_matrix_are_refused():
    model = build_model({**TINY, "fusion": "identity"})
    with pytest.raises(ValueError, match="no fusion matrix"):
        kernel_weights(model, torch.randn(1, 4, 1, 3, 64, 64), stage=2)
