"""Whole-clip transforms: crop geometry, resize folded into the crop, crop plans, uint8 views, one normalisation."""

import numpy as np
import pytest
import torch

from ean.data.clip_transform import EvalClipTransform, TrainClipTransform, render
from ean.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Box,
    center_crop_box,
    crop_resize,
    cut,
    multiscale_crop_box,
    normalize_clips,
    resized_shape,
    source_box,
    three_crop_boxes,
    union_box,
)


def uniform_frames(n=4, h=120, w=160, colour=(200, 100, 50)):
    frames = torch.empty(n, 3, h, w, dtype=torch.uint8)
    frames[:] = torch.tensor(colour, dtype=torch.uint8).view(1, 3, 1, 1)
    return frames


def test_resized_shape_fixed_or_short_side():
    assert resized_shape(360, 640, (240, 320)) == (240, 320)
    assert resized_shape(360, 640, 256) == (256, 455)
    assert resized_shape(640, 360, 256) == (455, 256)


def test_multiscale_crop_uses_the_tsn_sizes_and_positions():
    sides = {int(240 * s) for s in (1, 0.875, 0.75, 0.66)}
    rng = np.random.default_rng(0)
    boxes = [multiscale_crop_box(240, 320, 224, (1, 0.875, 0.75, 0.66), rng) for _ in range(500)]
    for b in boxes:
        assert b.height in sides and b.width in sides
        assert b.top >= 0 and b.top + b.height <= 240 and b.left >= 0 and b.left + b.width <= 320
    assert len({(b.top, b.left) for b in boxes}) > 13  # 13 positions per crop size
    assert {b.height for b in boxes} == {240, 210, 180, 158}  # int(240 * s); only sides within 3 px of 224 snap


def test_center_and_three_crops():
    assert center_crop_box(240, 320, 224) == Box(8, 48, 224, 224)
    assert three_crop_boxes(256, 340, 256) == [Box(0, 0, 256, 256), Box(0, 42, 256, 256), Box(0, 84, 256, 256)]
    assert three_crop_boxes(340, 256, 256)[2] == Box(84, 0, 256, 256)


def test_crop_resize_maps_the_box_to_source_pixels():
    frames = torch.arange(100, dtype=torch.uint8).view(1, 1, 10, 10).expand(2, 3, 10, 10)
    # working size 20x20 is the source upscaled 2x: box (4, 6, 10, 10) covers source rows 2..6, cols 3..7
    out = crop_resize(frames, Box(4, 6, 10, 10), (20, 20), (5, 5))
    assert torch.equal(out, frames[:, :, 2:7, 3:8])
    scaled = crop_resize(frames, Box(0, 0, 20, 20), (20, 20), (5, 5))
    assert scaled.shape == (2, 3, 5, 5) and scaled.dtype == torch.uint8


def test_normalize_clips_is_imagenet_mean_std():
    out = normalize_clips(uniform_frames(2, 2, 2)[None])  # (1, N, 3, H, W), as a batch
    expected = [(c / 255 - m) / s for c, m, s in zip((200, 100, 50), IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    assert out.dtype == torch.float32 and out.shape == (1, 2, 3, 2, 2) and out.is_contiguous()
    assert torch.allclose(out[0, 1, :, 1, 1], torch.tensor(expected), atol=1e-6)


def test_normalize_clips_takes_floats_as_normalised_and_rejects_other_types():
    floats = torch.randn(1, 3, 2, 2)
    assert normalize_clips(floats) is floats
    with pytest.raises(TypeError, match="uint8"):
        normalize_clips(torch.zeros(1, 3, 2, 2, dtype=torch.int64))


def test_crop_resize_returns_a_copy_even_without_scaling():
    """Decoders reuse their frame buffer: a crop that needs no scaling must not be a view of it."""
    frames = uniform_frames(2, 20, 20).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last
    out = crop_resize(frames, Box(0, 0, 20, 20), (20, 20), (20, 20))
    frames.zero_()
    assert int(out.min()) == 50


def test_training_and_test_views_are_uint8_with_the_same_pixels():
    frames = uniform_frames()
    train, _ = TrainClipTransform((240, 320), 112, flip=False)(frames, 0, np.random.default_rng(0))
    test = EvalClipTransform((240, 320), 112, crops=3)(frames)
    assert train.shape == (1, 4, 3, 112, 112) and test.shape == (3, 4, 3, 112, 112)
    assert train.dtype == test.dtype == torch.uint8
    assert torch.equal(train[0, 0, :, 50, 50], test[0, 0, :, 50, 50])
    assert torch.equal(train[0, 0, :, 0, 0], torch.tensor([200, 100, 50], dtype=torch.uint8))


def test_test_transform_rejects_two_crops():
    with pytest.raises(ValueError):
        EvalClipTransform(256, 224, crops=2)


def test_source_box_and_union():
    # working 240x320 on a 480x426 source: rows scale 2, columns 426/320
    assert source_box(Box(10, 20, 100, 160), (240, 320), (480, 426)) == Box(20, 27, 200, 213)
    assert source_box(Box(0, 0, 1, 1), (240, 320), (24, 32)) == Box(0, 0, 1, 1)  # at least one pixel
    assert union_box([Box(0, 10, 5, 5), Box(3, 0, 10, 4)]) == Box(0, 0, 13, 15)


def random_frames(n=6, h=45, w=70, seed=0):
    frames = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))
    return frames.permute(0, 3, 1, 2)  # channels-last, as the readers give them


@pytest.mark.parametrize("crops", [1, 3])
def test_test_views_cut_from_the_planned_region_equal_views_of_whole_frames(crops):
    frames = random_frames()
    transform = EvalClipTransform((48, 64), 32, crops)
    plan = transform.plan(tuple(frames.shape[-2:]))
    assert len(plan.crops) == crops and not plan.flip
    region = cut(frames, plan.region).contiguous(memory_format=torch.channels_last)  # what a decoder process sends
    working = resized_shape(45, 70, (48, 64))
    boxes = [center_crop_box(*working, 32)] if crops == 1 else three_crop_boxes(*working, 32)
    expected = torch.stack([crop_resize(frames, b, working, (32, 32)) for b in boxes])
    assert torch.equal(render(region, plan), expected)
    if crops == 1:
        assert plan.region.width < 70  # a centre crop needs only part of the frame


def test_the_training_plan_draws_crop_then_flip_and_renders_the_same_clip_as_whole_frames():
    frames = random_frames()
    transform = TrainClipTransform((48, 64), 32, flip=True)
    flips = set()
    for seed in range(20):
        plan = transform.plan(tuple(frames.shape[-2:]), 0, np.random.default_rng(seed))
        flips.add(plan.flip)
        rng = np.random.default_rng(seed)
        working = resized_shape(45, 70, (48, 64))
        box = multiscale_crop_box(*working, 32, transform.scales, rng)
        flip = rng.random() < 0.5
        assert plan.region == source_box(box, working, (45, 70)) and plan.flip == flip
        expected = crop_resize(frames, box, working, (32, 32))
        rendered = render(cut(frames, plan.region).clone(), plan)[0]
        assert torch.equal(rendered, expected.flip(-1) if flip else expected)
    assert flips == {False, True}
