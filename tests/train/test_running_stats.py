"""BatchNorm's running averages on W ranks end as one device's that ran the ranks' passes in turn.

Each rank is a thread here, and the all-gather a barrier (the gloo version of the whole loop is in
``test_ddp.py``): W replicas of one network start equal, each runs its own pass of every round, and after the
merge every replica must hold what one network running pass m x W + r in order holds.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from torch import nn

from ean.train.running_stats import PassOrderRunningStats


class _Net(nn.Module):
    """Two BatchNorms, one of them called twice per pass; one that keeps no averages."""

    def __init__(self, momentum: float | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4, momentum=momentum)
        self.twice = nn.BatchNorm2d(4, momentum=momentum)
        self.untracked = nn.BatchNorm2d(4, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x)).relu()
        return self.untracked(self.twice(self.twice(x) * 2 + 1))


class _ThreadGather:
    """An all-gather among W threads."""

    def __init__(self, ranks: int) -> None:
        self.slots: list[torch.Tensor | None] = [None] * ranks
        self.barrier = threading.Barrier(ranks)

    def for_rank(self, rank: int):
        def gather(state: torch.Tensor) -> torch.Tensor:
            self.slots[rank] = state
            self.barrier.wait()
            stacked = torch.stack(self.slots)  # type: ignore[arg-type]
            self.barrier.wait()
            return stacked

        return gather


def _averages(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


def _train_on_ranks(base: nn.Module, passes: list[list[torch.Tensor]], merge: bool) -> list[nn.Module]:
    ranks = len(passes[0])
    replicas = [copy.deepcopy(base).train() for _ in range(ranks)]
    gather = _ThreadGather(ranks)

    def run(rank: int) -> None:
        stats = PassOrderRunningStats(replicas[rank], ranks, gather.for_rank(rank))
        for round_ in passes:
            stats.before_pass()
            replicas[rank](round_[rank])
            if merge:
                stats.after_pass()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return replicas


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("ranks", [2, 3])
def test_merged_averages_are_one_devices(momentum, ranks):
    torch.manual_seed(0)
    base = _Net(momentum)
    passes = [[torch.randn(5, 3, 6, 6) * (1 + r) + m for r in range(ranks)] for m in range(3)]
    one = copy.deepcopy(base).train()
    for round_ in passes:
        for clips in round_:
            one(clips)
    expected = _averages(one)

    for replica in _train_on_ranks(base, passes, merge=True):
        got = _averages(replica)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.allclose(got[key].double(), value.double(), rtol=1e-5, atol=1e-6), key
        assert got["twice.num_batches_tracked"].item() == 2 * 3 * ranks

    unmerged = _averages(_train_on_ranks(base, passes, merge=False)[0])  # what DDP kept: rank 0's
    assert not torch.allclose(unmerged["bn.running_mean"], expected["bn.running_mean"], rtol=1e-3)


def test_nothing_to_merge_on_one_rank_or_without_updating_averages():
    gather = _ThreadGather(1).for_rank(0)
    assert not PassOrderRunningStats(_Net(0.1).train(), 1, gather).active
    assert not PassOrderRunningStats(_Net(0.1).eval(), 2, gather).active  # frozen BatchNorm
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))).train()
    assert not PassOrderRunningStats(sync, 2, gather).active  # statistics already span the ranks
    assert PassOrderRunningStats(_Net(0.1).train(), 2, gather).active


class _Branchy(nn.Module):
    """Calls its BatchNorm once more on a batch of more than 4: a call count that depends on the data."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(x)
        return self.bn(x) if x.shape[0] > 4 else x


def test_ranks_that_called_a_batchnorm_a_different_number_of_times_all_fail_clearly():
    gather, errors = _ThreadGather(2), []
    replicas = [_Branchy().train() for _ in range(2)]

    def run(rank: int) -> None:
        stats = PassOrderRunningStats(replicas[rank], 2, gather.for_rank(rank))
        stats.before_pass()
        replicas[rank](torch.randn(4 + rank, 3, 2, 2))  # rank 1's pass calls the BatchNorm twice
        try:
            stats.after_pass()
        except RuntimeError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 2 and "different number of times on the 2 ranks" in errors[0] and "#0" in errors[0]
