"""The driver's MLflow writes during a study: journaled on disk, applied in order by one thread, and replayed.

Training never waits for MLflow. Tune's callback hands each write (a trial's run opened, an epoch, its end) to
``BufferedTracker``, which appends it to the study's journal (``STORAGE/STUDY/_mlflow_journal.jsonl``) and
applies it from a thread. When the store does not answer (a server down, a sqlite file locked), the thread
keeps the write and retries it, later writes waiting behind it, and says so once; when the store answers
again it catches up in order. Writes still pending when the driver ends (or dies) stay in the journal and
the study's next invocation replays them before it plans (``replay``), so a trial that finished during an
outage is FINISHED, not trained again.

Every write is idempotent, so one applied twice (the driver died between applying it and recording that
it did) changes nothing: an epoch already in MLflow is skipped, a finished run is not finished again, a run's
data inputs are logged once, and an opened run carries the journal entry that created it (tag
``ean.opened_by``), which a replay finds instead of creating a second run, and completes (its params, config,
data inputs and Params/FLOPs, where missing) when the opening was cut short.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runners.epochs import EpochReport
from runners.trials import ModelCounts, Trial, TrialState
from study import mlflow_schema as S
from study.spec import Row

log = logging.getLogger(__name__)

JOURNAL_NAME = "_mlflow_journal.jsonl"
RETRY_S = 5.0


class Journal:
    """An append-only file of write entries and, beside it, the sequence number of the last one applied."""

    def __init__(self, path: Path):
        self.path = path
        self.marker = path.with_name(path.name + ".applied")
        self._lock = threading.Lock()
        entries = self._entries()
        # past the applied marker too: a journal deleted by hand beside its marker must not hide new entries
        self._next = max(entries[-1]["seq"] if entries else 0, self.applied()) + 1

    def _entries(self) -> list[dict[str, Any]]:
        """The entries in order; a line that is not a whole entry (a write torn by a full disk or a killed driver)
        is left out, with a warning naming it."""
        if not self.path.is_file():
            return []
        entries = []
        for number, line in enumerate(self.path.read_text(errors="replace").splitlines(), 1):
            entry = _entry(line)
            if entry is not None:
                entries.append(entry)
            elif line.strip():
                log.warning("%s, line %d: not a whole journal entry (a torn write), left out", self.path, number)
        return entries

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Writes ``entry`` with the next sequence number (flushed to the OS before it is applied), on a line of
        its own even after a torn write."""
        with self._lock:
            entry = {"seq": self._next, **entry}
            self._next += 1
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as f:
                start = b"\n" if _ends_inside_a_line(f) else b""
                f.write(start + json.dumps(entry, default=str).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
        return entry

    def applied(self) -> int:
        return int(self.marker.read_text() or 0) if self.marker.is_file() else 0

    def mark_applied(self, seq: int) -> None:
        tmp = self.marker.with_name(self.marker.name + ".tmp")
        tmp.write_text(str(seq))
        tmp.replace(self.marker)

    def pending(self) -> list[dict[str, Any]]:
        done = self.applied()
        return [e for e in self._entries() if e["seq"] > done]

    def clear_if_done(self) -> None:
        """Removes the journal once every entry is applied."""
        with self._lock:
            if not self.pending():
                self.path.unlink(missing_ok=True)
                self.marker.unlink(missing_ok=True)
                self._next = 1


def _entry(line: str) -> dict[str, Any] | None:
    """The journal entry a line holds; None for a line that is not one (blank, or cut short)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("seq"), int) and "op" in entry else None


def _ends_inside_a_line(f) -> bool:
    """Whether the file (open for reading) ends without a newline: a torn last write."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return False
    f.seek(size - 1)
    return f.read(1) != b"\n"


FULL = (errno.ENOSPC, errno.EDQUOT)  # a full disk or quota: freed space lets the write through


def transient(err: BaseException) -> bool:
    """Whether a failed write may succeed later: the store did not answer, was busy, or its disk (or the
    artifacts') was full; causes included. Such a write is kept, never dropped: a result is not lost to a
    full disk."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if _transient_alone(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _transient_alone(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in FULL:
        return True
    text = f"{type(err).__name__}: {err}"
    signs = (
        "failed with exception",  # MLflow's REST client after its retries
        "Max retries exceeded",
        "Connection refused",
        "ConnectionError",
        "ReadTimeout",
        "ConnectTimeout",
        "TEMPORARILY_UNAVAILABLE",
        "database is locked",
        "database or disk is full",  # sqlite's, where MLflow gives no error code
        "Bad Gateway",
        "Service Unavailable",
    )
    return isinstance(err, ConnectionError | TimeoutError) or any(s in text for s in signs)


def open_entry(trial: Trial, tags: dict[str, str], rerun: bool) -> dict[str, Any]:
    """The journal entry that opens a trial's run (everything ``StudyTracker.open_trial`` needs)."""
    return {
        "op": "open",
        "key": trial.key,
        "row": trial.row.id,
        "label": trial.row.label,
        "seed": trial.seed,
        "column": trial.column,
        "config": trial.config,
        "data_fingerprint": trial.data_fingerprint,
        "state": trial.state.value,
        "run_id": trial.run_id,
        "counts": asdict(trial.counts) if trial.counts is not None else None,
        "tags": tags,
        "rerun": rerun,
        "entry_id": uuid.uuid4().hex,
    }


def entry_counts(entry: dict[str, Any]) -> ModelCounts | None:
    """The network's counts in an ``open`` entry: ``counts`` (``{"params", "macs"}``), or ``profile``
    (``{"params", "flops"}``, possibly empty) in entries journaled before ``counts`` replaced it."""
    if entry.get("counts"):
        return ModelCounts(**entry["counts"])
    old = entry.get("profile")
    return ModelCounts(params=old["params"], macs=old["flops"]) if old else None


def entry_final(entry: dict[str, Any]) -> dict[str, Any]:
    """The trial's result in a ``finish`` entry. Entries (and trials' result files) written before ``test_loss``
    named the final evaluation's loss held it under ``val_loss``: it is renamed, so that it is logged once as
    ``test_loss`` and not as a point of the per-epoch ``val_loss`` curve."""
    final = dict(entry["final"])
    if "val_loss" in final:
        final.setdefault(S.METRIC_TEST_LOSS, final.pop("val_loss"))
    return final


def epoch_entry(key: str, report: EpochReport) -> dict[str, Any]:
    """The journal entry of one epoch of the trial ``key``: ``{"op", "key", "epoch", "metrics"}``."""
    return {"op": "epoch", "key": key, **asdict(report)}


def entry_report(entry: dict[str, Any]) -> EpochReport:
    """The epoch an ``epoch`` entry journaled (``epoch_entry``; the same form in every version)."""
    return EpochReport(int(entry["epoch"]), dict(entry["metrics"]))


class Applier:
    """Applies journal entries to a tracker, resolving each trial key to its run.

    ``known_counts`` (trial key -> counts) fills an ``open`` entry journaled before its network was counted:
    the invocation that wrote it may have stopped before applying it, and the plan of the one that replays it
    knows the counts (the plan cache keeps them).
    """

    def __init__(self, tracker, epoch_keys: tuple[str, ...], known_counts: dict[str, ModelCounts] | None = None):
        self.tracker, self.epoch_keys = tracker, epoch_keys
        self.known_counts = known_counts or {}
        self.run_ids: dict[str, str] = {}

    def run_id(self, key: str) -> str:
        if key not in self.run_ids:
            runs = self.tracker.trial_runs().get(key, [])
            if not runs:
                raise LookupError(f"no run of trial {key} in MLflow")
            self.run_ids[key] = runs[0].info.run_id
        return self.run_ids[key]

    def apply(self, entry: dict[str, Any]) -> None:
        op = entry["op"]
        if op == "open":
            self.run_ids[entry["key"]] = self._open(entry)
        elif op == "epoch":
            self.tracker.log_epoch(self.run_id(entry["key"]), entry_report(entry))
        elif op == "finish":
            run_id = self.run_id(entry["key"])
            if self.tracker.status(run_id) != S.STATUS_FINISHED:
                final = entry_final(entry)
                self.tracker.backfill(run_id, final.get("history", []), self.epoch_keys)
                self.tracker.finish_trial(run_id, final, final.get("scores_path"), entry["workdir"])
        elif op in ("fail", "kill"):
            run_id = self.run_id(entry["key"])
            if self.tracker.status(run_id) != S.STATUS_FINISHED:
                end = self.tracker.fail_trial if op == "fail" else self.tracker.kill_trial
                end(run_id, entry["reason"])
        elif op == "end_parent":
            self.tracker.end_parent(entry["status"])
        else:
            raise ValueError(f"unknown journal entry {op!r}")

    def _open(self, entry: dict[str, Any]) -> str:
        trial = Trial(
            study=self.tracker.study,
            row=Row(id=entry["row"], label=entry["label"]),
            seed=int(entry["seed"]),
            config=entry["config"],
            key=entry["key"],
            data_fingerprint=entry["data_fingerprint"],
            state=TrialState(entry["state"]),
            run_id=entry["run_id"],
            counts=entry_counts(entry) or self.known_counts.get(entry["key"]),
            column=entry.get("column", ""),
        )
        found = self.tracker.run_opened_by(entry["entry_id"])
        if found:  # applied before, perhaps cut short (the store failed, the driver died): completed, not made again
            return self.tracker.complete_open(found, trial, evaluation=S.TAG_EVALUATES in entry["tags"])
        tags = {**entry["tags"], S.TAG_OPENED_BY: entry["entry_id"]}
        return self.tracker.open_trial(trial, tags, bool(entry["rerun"]))


def replay(
    tracker, journal: Journal, epoch_keys: tuple[str, ...], known_counts: dict[str, ModelCounts] | None = None
) -> int:
    """Applies the writes an earlier invocation left pending; returns how many. Stops at the first that
    fails (the store is down again: the caller reports it). ``known_counts``: see :class:`Applier`."""
    pending = journal.pending()
    applier = Applier(tracker, epoch_keys, known_counts)
    for entry in pending:
        try:
            applier.apply(entry)
        except Exception as err:
            if transient(err):
                raise
            log.warning("journal entry %s (%s) could not be applied and is dropped: %s", entry["seq"], entry["op"], err)
        journal.mark_applied(entry["seq"])
    journal.clear_if_done()
    return len(pending)


class BufferedTracker:
    """Takes a study's writes without waiting for MLflow; one thread applies them in order (module docstring).

    Args:
        tracker: the study's tracker, or a Future of it (the store may still be opening).
        journal: where the writes are journaled.
        epoch_keys: the per-epoch metrics a trial's history is backfilled with.
        report: called with a line for the user when the store stops or starts answering again.
        retry_s: seconds between tries while the store does not answer.
    """

    def __init__(
        self,
        tracker,
        journal: Journal,
        epoch_keys: tuple[str, ...],
        report: Callable[[str], None],
        retry_s: float = RETRY_S,
        holds_lease: Callable[[], bool] | None = None,
    ):
        self._tracker, self.journal, self.epoch_keys = tracker, journal, epoch_keys
        self.report, self.retry_s, self.holds_lease = report, retry_s, holds_lease
        self._queue: queue.Queue = queue.Queue()
        self._counted_later: dict[int, Trial] = {}  # open entries journaled before their trial was counted
        self._idle = threading.Condition()
        self._pending = 0
        self._stop = threading.Event()
        self.fenced = threading.Event()  # another driver took the lease: write nothing more (``fence``)
        self.outage_since: float | None = None
        self.error: Exception | None = None  # what stopped the writes for good (``_drain``), if anything did
        self._thread = threading.Thread(target=self._drain, name="ean-mlflow-writer", daemon=True)
        self._thread.start()

    @property
    def tracker(self):
        if isinstance(self._tracker, Future):
            self._tracker = self._tracker.result()
        return self._tracker

    def submit(self, op: str, **fields: Any) -> None:
        """Journals one write and queues it (``op``: finish, fail, kill or end_parent)."""
        if not self.fenced.is_set():
            self._enqueue(self.journal.append({"op": op, **fields}))

    def open_trial(self, trial: Trial, tags: dict[str, str], rerun: bool) -> None:
        """Journals and queues the opening of a trial's run (created, or reopened when it resumes).

        A trial can start before the study's preparation has counted its network (Params, FLOPs); the tracker
        is that preparation's result, so when the entry is applied the trial's counts are known and go with it.
        """
        if self.fenced.is_set():
            return
        entry = self.journal.append(open_entry(trial, tags, rerun))
        if entry["counts"] is None:
            self._counted_later[entry["seq"]] = trial
        self._enqueue(entry)

    def log_epoch(self, key: str, report: EpochReport) -> None:
        """Journals and queues one epoch of the trial ``key``."""
        if not self.fenced.is_set():
            self._enqueue(self.journal.append(epoch_entry(key, report)))

    def fence(self) -> None:
        """Stops writing at once, for good: another driver holds the study's lease now. Nothing more is journaled
        or applied (what was journaled and not applied stays in the journal); later writes are dropped."""
        self.fenced.set()
        self._stop.set()
        self._queue.put(None)

    def _enqueue(self, entry: dict[str, Any]) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(entry)

    def flush(self, timeout_s: float) -> int:
        """Waits until every write is applied or ``timeout_s`` passed; returns how many are still pending."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending and self.error is None and time.monotonic() < deadline:
                self._idle.wait(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
            return self._pending

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _drain(self) -> None:
        """Applies the queued writes in order until closed. An error no write can get past (the preparation whose
        result is the tracker failed, the journal's applied marker cannot be written) stops the writes: it is
        reported and kept in ``error``, and the writes not applied stay in the journal."""
        try:
            self._drain_queue()
        except Exception as err:  # noqa: BLE001  reported to the user and to the driver (``error``)
            log.exception("the MLflow writer stopped")
            self.error = err
            self.report(f"MLflow writes stopped ({type(err).__name__}: {err}); they are kept in {self.journal.path}")
            with self._idle:
                self._idle.notify_all()

    def _drain_queue(self) -> None:
        applier = None
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            applier = applier or Applier(self.tracker, self.epoch_keys)  # the preparation is done from here on
            entry = self._with_counts(entry)
            if not self._apply_until_done(applier, entry):
                return  # closed during an outage: the rest stays in the journal for the next invocation
            self.journal.mark_applied(entry["seq"])
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _with_counts(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An ``open`` entry journaled before its trial was counted, with the counts known now."""
        trial = self._counted_later.pop(entry.get("seq"), None)
        if trial is None or trial.counts is None:
            return entry
        return {**entry, "counts": asdict(trial.counts)}

    def _still_holds(self) -> bool:
        """Whether the study's lease is still this driver's (True without a lease to ask; False when the store
        does not answer, or answers that another driver holds it: ``holds_lease`` then fences this writer)."""
        if self.holds_lease is None:
            return True
        try:
            return self.holds_lease()
        except Exception:  # noqa: BLE001  the store is still down
            return False

    def _apply_until_done(self, applier: Applier, entry: dict[str, Any]) -> bool:
        """Applies ``entry``, retrying while the store does not answer; False when closed before it could. After an
        outage (long enough for another driver to have taken the study's lease over), the lease is read first: a
        driver that lost it applies nothing more (``holds_lease`` fences it)."""
        while not self._stop.is_set():
            if self.outage_since is not None and not self._still_holds():
                if self._stop.is_set() or self.fenced.is_set():
                    return False
                time.sleep(self.retry_s)  # the store does not answer yet
                continue
            try:
                applier.apply(entry)
            except Exception as err:
                if not transient(err):
                    log.warning("MLflow write %s (%s) failed and is dropped: %s", entry["seq"], entry["op"], err)
                    self.report(f"an MLflow write ({entry['op']}) failed and was dropped: {err}")
                    return True
                if self.outage_since is None:
                    self.outage_since = time.monotonic()
                    first = str(err).splitlines()[0][:200]
                    self.report(
                        f"MLflow does not answer ({first}); training goes on, writes are kept in "
                        f"{self.journal.path} and applied when it answers again"
                    )
                time.sleep(self.retry_s)
                continue
            if self.outage_since is not None:
                lasted = time.monotonic() - self.outage_since
                self.outage_since = None
                self.report(f"MLflow answers again after {lasted:.0f} s; catching up with the buffered writes in order")
            return True
        return False
