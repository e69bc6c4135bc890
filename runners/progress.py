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

    The time left is estimated from one trial's pace and the number of trials running side by side: the pace
    is the seconds a trial took for each epoch it trained in this invocation (from its start, or its last
    report, to its report; a trial resumed at epoch 9 has trained one epoch when it reports epoch 9, and an
    epoch a retried trial reports again counts once), the width the most trials seen running at once. The
    epochs left then take ``pace x max(epochs left / width, the most any one trial has left)``: right from the
    first report when all trials start together (a throughput over the elapsed time is ``width`` times too
    high until every running trial has reported), and right at the end, when one trial's epochs are left.

    Args:
        total: trials to run in this invocation.
        epochs: epochs per trial.
        untrained: the names of those that train no epoch (an evaluation row's trials: a test pass each),
            left out of the time left.
    Prints to ``sys.stdout`` as it is at each call (Tune pickles its callbacks, so no stream is held).
    """

    def __init__(self, total: int, epochs: int, untrained: frozenset[str] = frozenset()):
        self.total, self.epochs, self.untrained = total, max(epochs, 1), frozenset(untrained)
        self.start = time.monotonic()
        self.done = self.failed = 0
        self.running: set[str] = set()
        self.first: dict[str, int] = {}  # trial -> the epoch it had reached when this invocation first heard of it
        self.last: dict[str, int] = {}  # trial -> the highest epoch it reported
        self.closed: set[str] = set()  # finished or failed
        self.since: dict[str, float] = {}  # trial -> when its current epoch began: its (re)start or last report
        self.spent = 0.0  # seconds the trials took for the epochs they trained in this invocation
        self.width = 1  # the most trials seen running at once

    def _eta(self) -> str:
        trained = sum(self.last[n] - self.first[n] for n in self.last)
        if not trained:
            return "?"
        pace = self.spent / trained
        ahead = [self.epochs - self.last[n] for n in self.last if n not in self.closed]
        heard = (self.last.keys() | self.closed) - self.untrained
        ahead += [self.epochs] * max(self.total - len(self.untrained) - len(heard), 0)
        return "~" + _clock(pace * max(sum(ahead) / self.width, max(ahead, default=0)))

    def _running(self, name: str) -> None:
        self.running.add(name)
        self.width = max(self.width, len(self.running))

    def _print(self, name: str, message: str) -> None:
        state = f"done {self.done}/{self.total} | running {len(self.running)} | failed {self.failed}"
        elapsed = _clock(time.monotonic() - self.start)
        print(f"[{state}] {name}: {message} | {elapsed} elapsed, {self._eta()} left", file=sys.stdout, flush=True)

    def started(self, name: str) -> None:
        """Trial ``name`` (re)started: its next epoch is timed from now."""
        self._running(name)
        self.since[name] = time.monotonic()
        self._print(name, "started")

    def epoch(self, name: str, report: EpochReport) -> None:
        """After epoch ``report.epoch`` (1-based) of trial ``name``."""
        self._running(name)
        now = time.monotonic()
        self.first.setdefault(name, report.epoch - 1)
        before = self.last.get(name, self.first[name])
        if report.epoch > before:  # new epochs (a retried trial's repeated report trains none)
            self.spent += now - self.since.get(name, self.start)
            self.last[name] = report.epoch
        self.since[name] = now
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
