"""The spatial-temporal blocks work in the channels-last layout (the backbone's after its first temporal conv).

Whatever the layout of its input, a block computes the same numbers (within float tolerance), returns a
channels-last tensor, and its parts equal their plain definitions.
"""

import pytest
import torch
import torch.nn.functional as F

from ean.models.fusion.base import apply_matrix
from ean.models.pointwise import GroupedPointwise
from ean.models.registries import BLOCKS

CL = torch.channels_last


def test_grouped_pointwise_is_a_grouped_1x1_convolution_in_either_layout():
    torch.manual_seed(0)
    conv = GroupedPointwise(16, 8, groups=4)
    x = torch.randn(6, 16, 5, 7)
    expected = F.conv2d(x, conv.weight, groups=4)
    for layout in (torch.contiguous_format, CL):
        out = conv(x.contiguous(memory_format=layout))
        torch.testing.assert_close(out, expected)
        assert out.is_contiguous(memory_format=CL)


def test_apply_matrix_mixes_channels_per_clip_in_either_layout_and_keeps_channels_last():
    torch.manual_seed(0)
    n, t, c = 2, 3, 5
    x = torch.randn(n * t, c, 4, 6)
    matrix = torch.randn(n, c, c)  # not symmetric: a transposed M would give other numbers
    clips = x.view(n, t, c, 4, 6)
    expected = torch.einsum("nij,ntjhw->ntihw", matrix, clips).reshape(n * t, c, 4, 6)
    torch.testing.assert_close(apply_matrix(x, matrix, t), expected)
    out = apply_matrix(x.contiguous(memory_format=CL), matrix, t)
    torch.testing.assert_close(out, expected)
    assert out.is_contiguous(memory_format=CL) and not out.is_contiguous()


BLOCK_OPTIONS = {
    "eab_dynamic": ("eab", {}),
    "eab_static": ("eab", {"fusion": "static"}),
    "eab_shuffle": ("eab", {"fusion": "shuffle"}),
    "eab_avg_1+1+1": ("eab", {"pool": "avg", "factorization": "1+1+1"}),
    "incep_block": ("incep_block", {}),
    "s_block": ("s_block", {}),
    "l_block": ("l_block", {}),
}


@pytest.mark.parametrize("name", list(BLOCK_OPTIONS))
def test_a_block_computes_the_same_in_either_layout_and_returns_channels_last(name):
    block_name, options = BLOCK_OPTIONS[name]
    torch.manual_seed(0)
    block = BLOCKS.build(block_name, channels=48, num_segments=4, **options).train()
    with torch.no_grad():
        block.expand.weight.mul_(100)  # the block's output must depend on its branches, not only on x
    x = torch.randn(8, 48, 10, 10)
    grad = torch.randn(8, 48, 10, 10)
    results = []
    for layout in (torch.contiguous_format, CL):
        block.zero_grad()
        inp = x.clone().contiguous(memory_format=layout).requires_grad_()
        out = block(inp)
        out.backward(grad)
        assert out.is_contiguous(memory_format=CL)
        grads = {n: p.grad.clone() for n, p in block.named_parameters() if p.grad is not None}
        results.append((out.detach(), inp.grad, grads))
    (out_a, dx_a, grads_a), (out_b, dx_b, grads_b) = results
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(dx_b, dx_a)
    assert grads_a.keys() == grads_b.keys() and "compress.weight" in grads_a
    for key in grads_a:
        torch.testing.assert_close(grads_b[key], grads_a[key], rtol=1e-4, atol=1e-5)
