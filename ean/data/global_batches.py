"""The training order, as global batches that do not depend on how many devices carry them.

A trial's key leaves out how many devices carry its global batch (``ean.trial``), so the clips must not
depend on it either. Epoch ``e`` (0-based) of a dataset of N videos with global batch G and per-device
batch B::

    generator seeded with seed + e * EPOCH_STRIDE -> a permutation of the N videos, then N augmentation seeds
    positions 0 .. N // G * G - 1 (the last incomplete global batch dropped) -> chunks of B consecutive positions
    chunk c -> rank c % W, as that rank's (c // W)-th forward pass of B clips

On W devices with A = G / (W * B) passes per optimizer step, step s takes chunks s*W*A .. (s+1)*W*A - 1: the
same clips as on one device with W * A passes, in the same chunks (the same BatchNorm batches), each clip
with the same augmentation seed. ``chunk_seed`` gives each chunk's forward pass its own seed (dropout), so the
passes compute the same things wherever they run; what remains is floating-point order (DDP's all-reduce).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

#: Epoch e's generator starts from seed + e * EPOCH_STRIDE.
EPOCH_STRIDE = 1_000_033


class GlobalBatchSampler(Sampler):
    """Yields one rank's ``(index, augmentation seed)`` pairs of an epoch, chunk after chunk (see the module).

    Args:
        size: N, videos in the dataset.
        global_batch: G, clips per optimizer step over all devices.
        per_device_batch: B, clips per forward pass (the loader's batch size); must divide G.
        seed: the trial's seed.
        rank: this device's rank, 0 <= rank < world.
        world: W, devices carrying the batch; W * B must divide G.
    """

    def __init__(self, size: int, global_batch: int, per_device_batch: int, seed: int, rank: int = 0, world: int = 1):
        if per_device_batch < 1 or world < 1 or global_batch % (per_device_batch * world):
            raise ValueError(
                f"global batch {global_batch} is not a whole number of forward passes of {per_device_batch} clips "
                f"on each of {world} device(s)"
            )
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside 0..{world - 1}")
        self.size, self.global_batch, self.per_device_batch = size, global_batch, per_device_batch
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Starts epoch ``epoch`` (0-based): its order and seeds are a function of the seed and the epoch only."""
        self.epoch = epoch

    def chunks(self) -> int:
        """Forward passes of ``per_device_batch`` clips in this epoch, all ranks together."""
        return self.size // self.global_batch * self.global_batch // self.per_device_batch

    def __len__(self) -> int:
        return self.chunks() // self.world * self.per_device_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed + EPOCH_STRIDE * self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        seeds = torch.randint(2**62, (self.size,), generator=generator).tolist()
        b = self.per_device_batch
        for chunk in range(self.rank, self.chunks(), self.world):
            for position in range(chunk * b, (chunk + 1) * b):
                yield order[position], seeds[position]


def chunk_seed(seed: int, epoch: int, chunk: int) -> int:
    """The seed of one forward pass's randomness (dropout): a function of the trial's seed, the 0-based epoch and
    the chunk (``GlobalBatchSampler``'s numbering), not of the device that runs it."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{chunk}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
