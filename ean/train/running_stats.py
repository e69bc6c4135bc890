"""BatchNorm's running averages under DDP, updated as one device would have updated them.

On W devices, pass m of rank r trains the clips of pass m x W + r on one device (:mod:`ean.data.global_batches`),
so the weights are the same whatever W is. BatchNorm's running mean and variance are not, left alone: each
rank folds only its own passes into them and DDP keeps rank 0's (half of the batches on 2 ranks). After every
round of W concurrent passes, :class:`PassOrderRunningStats` gathers each rank's averages and writes on every
rank what one device folding the W passes in rank order would hold.

The update of one pass is linear in the averages it starts from. With momentum a, a module folded into its
running value v the statistic x of each of its d calls in the pass; from a common start v0, rank r ends at
``v_r = c v0 + y_r`` with ``c = (1 - a)^d``, and one device folding the ranks' passes in turn ends at
``c^W v0 + sum_r c^(W-1-r) y_r``: a weighted sum of v0 and the v_r, with no batch statistic needed. A
cumulative average (momentum None) is ``(n0 v0 + sum of the statistics) / n`` with n counted by
``num_batches_tracked``. Weights are computed per module, applied per channel, in float64.

Cost per pass: one all-gather of the running averages (73,747 numbers for EAN 8F RGB+LMC) and one host sync
(every rank must have called each layer as often; else all ranks raise); the merge takes 0.3-0.5% of a
training pass on CPU (``benchmarks/running_stats.py``).
``SyncBatchNorm`` (whose statistics already span the ranks' concurrent passes), frozen BatchNorm (eval mode)
and a single process need none of this: the class is then inactive.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Gather = Callable[[torch.Tensor], torch.Tensor]


def _tracking(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.modules.batchnorm._BatchNorm)
        and not isinstance(module, nn.SyncBatchNorm)
        and module.track_running_stats
        and module.training
    )


class PassOrderRunningStats:
    """Merges the ranks' BatchNorm running averages after each round of concurrent passes.

    Args:
        model: the network (or its DDP wrapper), already in train or frozen-BatchNorm mode.
        ranks: W, the processes training together (1: inactive).
        gather: stacks every rank's (n,) float64 vector into (W, n), in rank order (an all-gather).

    Use: ``before_pass()`` ahead of each forward pass, ``after_pass()`` after it, on every rank.
    """

    def __init__(self, model: nn.Module, ranks: int, gather: Gather) -> None:
        self.modules = [m for m in model.modules() if _tracking(m)] if ranks > 1 else []
        self.ranks, self.gather = ranks, gather
        self._start: torch.Tensor | None = None
        if self.modules:
            sizes = torch.tensor([m.num_features for m in self.modules])
            self._owner = torch.arange(len(self.modules)).repeat_interleave(sizes).repeat(2)  # module of each number
            momenta = [m.momentum if m.momentum is not None else float("nan") for m in self.modules]
            self._momentum = torch.tensor(momenta, dtype=torch.float64)

    @property
    def active(self) -> bool:
        """Whether there is anything to merge (several ranks, BatchNorm layers that update their averages)."""
        return bool(self.modules)

    def before_pass(self) -> None:
        """Notes the averages every rank starts the pass from (the same on all ranks)."""
        if self.active:
            self._start = self._state()
            if self._owner.device != self._start.device:  # once: the per-module constants go where the model is
                self._owner, self._momentum = self._owner.to(self._start.device), self._momentum.to(self._start.device)

    def after_pass(self) -> None:
        """Replaces each rank's averages with those of one device folding the ranks' passes in rank order."""
        if not self.active:
            return
        if self._start is None:
            raise RuntimeError("after_pass() without before_pass()")
        start, ends = self._start, self.gather(self._state())  # (n,), (W, n)
        self._start = None
        count = len(self.modules)
        tracked0, tracked = start[-count:], ends[0, -count:]
        self._check_same_calls(ends[:, -count:])
        start_weight, end_weights = self._weights(tracked0, tracked - tracked0)  # (M,), (W, M)
        merged = start_weight[self._owner] * start[:-count]
        merged += (end_weights[:, self._owner] * ends[:, :-count]).sum(dim=0)
        self._write(merged, tracked0 + self.ranks * (tracked - tracked0))

    def _check_same_calls(self, counts: torch.Tensor) -> None:
        """Raises on every rank when the ranks' passes called some BatchNorm a different number of times."""
        differ = (counts != counts[:1]).any(dim=0)
        if bool(differ.any()):  # one host sync per pass (the loss's finiteness check makes one too)
            names = [type(self.modules[i]).__name__ + f" #{i}" for i in differ.nonzero().flatten().tolist()]
            raise RuntimeError(
                f"BatchNorm layers called a different number of times on the {self.ranks} ranks in one pass "
                f"({', '.join(names)}): their running averages cannot be merged in pass order; a network whose "
                "BatchNorm calls depend on the data cannot train on several devices"
            )

    def _weights(self, tracked0: torch.Tensor, calls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per module: the weight of the start and of each rank's end in the merged average."""
        ranks, momentum = self.ranks, self._momentum
        decay = (1 - momentum).pow(calls)  # c: what one pass leaves of the value it starts from
        later = torch.arange(ranks - 1, -1, -1, device=calls.device, dtype=calls.dtype)  # W-1-r
        ema_ends = decay[None, :].pow(later[:, None])  # (W, M)
        ema_start = decay.pow(ranks) - decay * ema_ends.sum(dim=0)
        total = (tracked0 + ranks * calls).clamp(min=1)
        cumulative_ends = ((tracked0 + calls) / total).expand(ranks, -1)
        cumulative_start = tracked0 * (1 - ranks) / total
        cumulative = momentum.isnan()
        start = torch.where(cumulative, cumulative_start, ema_start)
        ends = torch.where(cumulative, cumulative_ends, ema_ends)
        idle = calls == 0  # a module no pass called keeps its value
        return torch.where(idle, torch.ones_like(start), start), torch.where(idle, torch.zeros_like(ends), ends)

    def _state(self) -> torch.Tensor:
        """(2C + M,) float64: every running mean, then every running variance, then the call counts."""
        means = [m.running_mean for m in self.modules]
        variances = [m.running_var for m in self.modules]
        counts = torch.stack([m.num_batches_tracked for m in self.modules])
        return torch.cat([torch.cat(means + variances).double(), counts.double()])

    def _write(self, averages: torch.Tensor, counts: torch.Tensor) -> None:
        targets = [m.running_mean for m in self.modules] + [m.running_var for m in self.modules]
        sources = list(averages.split([t.numel() for t in targets]))
        with torch.no_grad():  # one fused copy (on CUDA) for all the layers
            torch._foreach_copy_(targets, sources)
            torch._foreach_copy_([m.num_batches_tracked for m in self.modules], list(counts.round().long().unbind()))
