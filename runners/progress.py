"""A compact progress display for a study: trials done / running / failed, epochs, elapsed and ETA."""

from __future__ import annotations

import sys
import time

from runners.epochs import EpochReport

#: The metrics an epoch's line shows, where the epoch has them.
SHOWN_METRICS = ("train_loss", "val_top1")


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


class Progress:
    """Prints one line per event: ``[done 3/10 | running 2 | failed 0] name: message | 1:02 elapsed, ~2:10 left``.

    The remaining time is estimated from the epochs trained in this invocation so far (all trials of a study
    train the same number of epochs): a trial resumed at epoch 9 has trained one epoch after reporting epoch
    9, and epochs a retried trial reports again count once.

    Args:
        total: trials to run in this invocation.
        epochs: epochs per trial.
    Prints to ``sys.stdout`` as it is at each call (Tune pickles its callbacks, so no stream is held).
    """

    def __init__(self, total: int, epochs: int):
        self.total, self.epochs = total, max(epochs, 1)
        self.start = time.monotonic()
        self.done = self.failed = 0
        self.running: set[str] = set()
        self.first: dict[str, int] = {}  # trial -> the epoch it had reached when this invocation first heard of it
        self.last: dict[str, int] = {}  # trial -> the highest epoch it reported
        self.closed: set[str] = set()  # finished or failed

    def _eta(self) -> str:
        trained = sum(self.last[n] - self.first[n] for n in self.last)
        if not trained:
            return "?"
        per_epoch = (time.monotonic() - self.start) / trained
        left = sum(self.epochs - self.last[n] for n in self.last if n not in self.closed)
        left += max(self.total - len(self.last.keys() | self.closed), 0) * self.epochs
        return "~" + _clock(per_epoch * left)

    def _print(self, name: str, message: str) -> None:
        state = f"done {self.done}/{self.total} | running {len(self.running)} | failed {self.failed}"
        elapsed = _clock(time.monotonic() - self.start)
        print(f"[{state}] {name}: {message} | {elapsed} elapsed, {self._eta()} left", file=sys.stdout, flush=True)

    def started(self, name: str) -> None:
        self.running.add(name)
        self._print(name, "started")

    def epoch(self, name: str, report: EpochReport) -> None:
        """After epoch ``report.epoch`` (1-based) of trial ``name``."""
        self.running.add(name)
        self.first.setdefault(name, report.epoch - 1)
        self.last[name] = max(self.last.get(name, 0), report.epoch)
        metrics = report.metrics
        shown = ", ".join(f"{k} {metrics[k]:.3g}" for k in SHOWN_METRICS if k in metrics)
        self._print(name, f"epoch {report.epoch}/{self.epochs} {shown}")

    def finished(self, name: str, top1: float | None) -> None:
        self.running.discard(name)
        self.done += 1
        self.closed.add(name)
        self._print(name, "finished" + (f", top1 {top1:.1f}%" if top1 is not None else ""))

    def failed_trial(self, name: str, reason: str) -> None:
        self.running.discard(name)
        self.failed += 1
        self.closed.add(name)
        self._print(name, f"FAILED: {reason.splitlines()[0] if reason else '?'}")

    def retrying(self, name: str, reason: str) -> None:
        first = reason.splitlines()[0] if reason else "?"
        self._print(name, f"crashed ({first}); retrying: it resumes from its last checkpoint, if it wrote one")

    def note(self, name: str, message: str) -> None:
        self._print(name, message)
