"""The training order: global batches that do not depend on how many devices carry them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ean.data.global_batches import GlobalBatchSampler, chunk_seed


def passes(sampler: GlobalBatchSampler) -> list[list[tuple[int, int]]]:
    """The sampler's forward passes: its pairs in chunks of ``per_device_batch``."""
    pairs, b = list(sampler), sampler.per_device_batch
    return [pairs[i : i + b] for i in range(0, len(pairs), b)]


@st.composite
def layouts(draw):
    """(videos, global batch, per-device batch, devices) with devices x per-device batch dividing the global batch."""
    per_device = draw(st.integers(1, 4))
    world = draw(st.integers(1, 4))
    accumulation = draw(st.integers(1, 3))
    global_batch = per_device * world * accumulation
    return draw(st.integers(0, 40)), global_batch, per_device, world


@settings(max_examples=60, deadline=None)
@given(layout=layouts(), seed=st.integers(0, 2**31), epoch=st.integers(0, 5))
def test_every_device_count_gets_the_passes_of_one_device(layout, seed, epoch):
    """Rank r's pass m on W devices is pass m * W + r on one device (same clips, same augmentation seeds), so
    every optimizer step sees the same clips in the same BatchNorm batches."""
    size, global_batch, per_device, world = layout
    one = GlobalBatchSampler(size, global_batch, per_device, seed)
    one.set_epoch(epoch)
    reference = passes(one)
    for rank in range(world):
        sampler = GlobalBatchSampler(size, global_batch, per_device, seed, rank=rank, world=world)
        sampler.set_epoch(epoch)
        got = passes(sampler)
        assert got == reference[rank::world]
        assert len(sampler) == len(reference) // world * per_device
    used = [index for chunk in reference for index, _ in chunk]
    assert len(used) == size // global_batch * global_batch  # whole global batches only
    assert len(set(used)) == len(used)  # each video at most once per epoch


def test_an_epoch_is_a_function_of_the_seed_and_the_epoch_only():
    sampler = GlobalBatchSampler(20, 4, 2, seed=7)
    sampler.set_epoch(1)
    first = list(sampler)
    sampler.set_epoch(0)
    other_epoch = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) == first  # however the earlier epochs ran
    assert first != other_epoch and sorted(first) != sorted(other_epoch)
    again = GlobalBatchSampler(20, 4, 2, seed=7)
    again.set_epoch(1)
    assert list(again) == first
    other_seed = GlobalBatchSampler(20, 4, 2, seed=8)
    other_seed.set_epoch(1)
    assert list(other_seed) != first


@pytest.mark.parametrize(("global_batch", "per_device", "world"), [(6, 4, 1), (8, 2, 3), (4, 0, 1)])
def test_a_global_batch_that_the_devices_cannot_share_is_refused(global_batch, per_device, world):
    with pytest.raises(ValueError, match=f"global batch {global_batch}"):
        GlobalBatchSampler(20, global_batch, per_device, 0, world=world)


def test_chunk_seeds_differ_by_seed_epoch_and_chunk():
    seeds = {chunk_seed(s, e, c) for s in range(3) for e in range(3) for c in range(10)}
    assert len(seeds) == 90 and all(0 <= s < 2**63 for s in seeds)
    assert chunk_seed(1, 2, 3) == chunk_seed(1, 2, 3)
