"""Batches keep the clips' memory layout: the same values as default_collate, a plain copy per clip."""

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ean.data.collate import collate_clips, is_dense, stack_as_laid_out


def channels_last_clip(seed: int) -> torch.Tensor:
    """(T, L, 3, S, S) uint8 with the colour channel innermost in memory, as the pipeline makes them."""
    pixels = torch.randint(0, 256, (4, 2, 6, 6, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return pixels.permute(0, 1, 4, 2, 3)


def test_dense_layouts():
    clip = channels_last_clip(0)
    assert is_dense(clip) and is_dense(clip.contiguous()) and is_dense(torch.zeros(3, 2).unsqueeze(1))
    assert not is_dense(clip[..., :3]) and not is_dense(torch.zeros(3, 1).expand(3, 4))


def test_collate_gives_default_collates_values_with_the_clips_strides():
    samples = [(channels_last_clip(i), i % 2, 10 + i) for i in range(3)]
    clips, labels, index = collate_clips(samples)
    expected = default_collate(samples)
    assert torch.equal(clips, expected[0]) and torch.equal(labels, expected[1]) and torch.equal(index, expected[2])
    assert clips.stride() == (clips[0].numel(), *samples[0][0].stride())  # colour still innermost
    assert not clips.untyped_storage().is_shared()  # shared memory only in DataLoader workers


def test_mixed_or_gappy_layouts_fall_back_to_a_plain_stack():
    a, b = channels_last_clip(0), channels_last_clip(1).contiguous()
    assert torch.equal(stack_as_laid_out([a, b]), torch.stack([a, b]))
    gappy = [channels_last_clip(i)[..., :4] for i in range(2)]
    assert torch.equal(stack_as_laid_out(gappy), torch.stack(gappy))


class Clips(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return channels_last_clip(i), i, i


def test_a_worker_puts_the_batch_in_shared_memory_and_the_layout_survives_the_transfer():
    loader = DataLoader(Clips(), batch_size=2, num_workers=1, collate_fn=collate_clips)
    batches = list(loader)
    reference = [default_collate([Clips()[i] for i in (0, 1)]), default_collate([Clips()[i] for i in (2, 3)])]
    for (clips, labels, _), expected in zip(batches, reference, strict=True):
        assert torch.equal(clips, expected[0]) and torch.equal(labels, expected[1])
        assert clips.stride()[3] == 1  # (B, T, L, 3, S, S) with the colour channel innermost
        assert clips.untyped_storage().is_shared()
