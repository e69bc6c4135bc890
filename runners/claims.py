"""Trial keys claimed store-wide while a driver trains them, so that two studies sharing a trial never both train it.

A trial key names one computation whichever study plans it (Table 8's "+Incep-Block" is Table 9's "Identity"),
and a study reuses another study's FINISHED run of it (``runners.reuse``). Two drivers running such studies at
once would each find the other's run unfinished and train it too. So a driver, holding its study's lease,
claims each key it is about to train and holds the claims until it ends. A key another live driver claims is
left to that driver: this invocation does not train it and names the study that does; the same command run
again once that study finished it reuses its result.

A claim is a mutex of the lease's kinds (``runners.lease``), one per key. On a sqlite store: an exclusive
``flock`` on a file in a folder beside the store (``.<store>.claims/<key>``, which names the claiming study),
freed by the kernel when the driver dies. On any other store (a tracking server): an experiment named
``ean-claim/<key>`` (``claim_experiment_name``), tagged with the claiming study and its experiment, alive while
its creator holds that study's lease (whose heartbeat says so), discarded once it does not.

A result still waiting in a stopped driver's journal (``runners.journal``: MLflow did not take it before the
driver ended or died) keeps its key claimed on a sqlite store: a claim file also names its driver's journal, and
a driver that takes a claim whose journal holds a pending ``finish`` of that key leaves the key alone and says
to run that study again (its next invocation writes the result to MLflow first, and this study then reuses
it). On a tracking server a claim ends with its driver: when the server is down, nothing can be marked there.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path

from runners.lease import STALE_AFTER_S, ExperimentMutex, FileMutex, pid_alive, read_holder
from runners.store_template import sqlite_path
from study import mlflow_schema as S

log = logging.getLogger(__name__)


def claim_experiment_name(key: str) -> str:
    """The name of the experiment that claims trial ``key`` on a tracking server."""
    return f"{S.CLAIM_LOCK_PREFIX}{key}"


def claims_folder(store: Path) -> Path:
    """The folder beside a sqlite store that holds its claim files."""
    return store.with_name(f".{store.name}.claims")


FINISHED_BY = "finished by study"
_JOURNAL_LINE = "journal: "


def held_by(holder: str) -> str:
    """What the trial of a key another driver holds is, as the user is told: ``being run by study 'S' (pid N on
    HOST)``, or, for a result waiting in a stopped driver's journal, ``finished by study 'S', ...`` and what to do."""
    return holder if holder.startswith(FINISHED_BY) else f"being run by {holder}"


def pending_result(text: str, key: str, own_journal: Path | None = None) -> str | None:
    """For the text of a claim file of ``key`` whose driver is gone: what holds the key while the journal that
    text names (not ``own_journal``) still holds a ``finish`` of the key that MLflow has not taken; else None
    (also where that journal cannot be read: a warning says so)."""
    lines = text.splitlines()
    path = next((Path(ln[len(_JOURNAL_LINE) :]) for ln in lines if ln.startswith(_JOURNAL_LINE)), None)
    if path is None or path == own_journal or not path.is_file():
        return None
    try:
        if not _finish_pending(path, key):
            return None
    except (OSError, ValueError) as err:  # unreadable: it cannot say a result waits there
        log.warning("the MLflow journal %s, named by the claim of %s, cannot be read (%s); ignored", path, key, err)
        return None
    match = re.match(r"study '(.*)' \(pid", lines[0])
    study = match.group(1) if match else "?"
    storage = path.parent.parent  # STORAGE/STUDY/_mlflow_journal.jsonl
    return (
        f"{FINISHED_BY} '{study}', its result waiting in that study's MLflow journal {path} (its driver stopped "
        f"before MLflow took it): run study '{study}' again with --storage {storage} to write it"
    )


def _finish_pending(journal: Path, key: str) -> bool:
    """Whether ``journal`` holds a ``finish`` of ``key`` that MLflow has not taken."""
    from runners.journal import Journal

    return any(e["op"] == "finish" and e.get("key") == key for e in Journal(journal).pending())


class KeyClaims:
    """The trial keys this driver claims, held from ``take`` to ``release``.

    Args:
        tracking_uri: the MLflow store.
        experiment_id: this study's experiment (whose lease this driver holds).
        study: this study's name (what another driver is told).
        owner: this driver's lease id (``StudyLease.owner``).
        stale_after_s: a claim's creator on another host is dead when its study's heartbeat is older than this.
        journal: this study's MLflow journal, which its claim files name (module docstring; None: not named).
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        study: str,
        owner: str,
        stale_after_s: float = STALE_AFTER_S,
        journal: Path | None = None,
    ):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        store = sqlite_path(tracking_uri)
        self.store = store.resolve() if store is not None else None  # drivers naming it through a symlink agree
        self.experiment_id, self.study, self.owner, self.stale_after_s = experiment_id, study, owner, stale_after_s
        self.journal = journal
        self._held: dict[str, FileMutex | ExperimentMutex] = {}

    def take(self, keys: Iterable[str]) -> dict[str, str]:
        """Claims each of ``keys`` (one this driver holds already stays held); returns those another live driver
        holds, each with who holds it."""
        refused = {}
        for key in dict.fromkeys(keys):
            if key in self._held:
                continue
            mutex = self._mutex(key)
            if not mutex.take():
                refused[key] = self._holder(mutex)
                continue
            if isinstance(mutex, FileMutex):
                try:
                    pending = pending_result(mutex.read(), key, self.journal)
                except BaseException:
                    mutex.give(keep_text=True)
                    raise
                if pending:  # a stopped driver's result of it waits in its journal: the file keeps naming it
                    mutex.give(keep_text=True)
                    refused[key] = pending
                    continue
                mutex.write(self._description())
            self._held[key] = mutex
        return refused

    def lost(self) -> str | None:
        """What another driver took of this driver's claims (None: nothing): on a tracking server a claim's lock
        experiment is taken over once its creator's heartbeats have not reached the server for a while (a network
        partition), though it may still run; a flock beside a sqlite store cannot be taken while held. Asked by
        the lease's heartbeat (``StudyLease.watch``)."""
        for key, mutex in list(self._held.items()):
            if isinstance(mutex, FileMutex):
                continue
            lock = self.client.get_experiment_by_name(mutex.name)
            if self._held.get(key) is not mutex:  # released by this driver meanwhile
                continue
            if lock is None or lock.lifecycle_stage != "active" or lock.tags.get(S.LEASE_OWNER) != self.owner:
                return f"the claim of trial {key} was taken over by {self._holder(mutex)}"
        return None

    def release(self) -> None:
        """Frees every claim this driver holds; one the store cannot free now (it does not answer) is left to go
        stale, as the lease is."""
        while self._held:
            key, mutex = self._held.popitem()
            try:
                if isinstance(mutex, FileMutex):  # a result MLflow has not taken keeps its key (module docstring)
                    mutex.give(keep_text=self._result_pending(key))
                else:
                    mutex.give()
            except Exception as err:  # noqa: BLE001  its creator's lease (heartbeat) frees it
                name = mutex.name if isinstance(mutex, ExperimentMutex) else mutex.path.name
                log.warning("could not release the claim of %s: %s", name, err)

    def _mutex(self, key: str) -> FileMutex | ExperimentMutex:
        if self.store is not None:
            folder = claims_folder(self.store)
            folder.mkdir(exist_ok=True)
            return FileMutex(folder / key)
        tags = {S.CLAIM_STUDY: self.study, S.CLAIM_EXPERIMENT: self.experiment_id}
        return ExperimentMutex(
            self.client, claim_experiment_name(key), self.owner, self._study_holder, self.stale_after_s, tags
        )

    def _study_holder(self, lock):
        """The lease holder of the study that created the claim ``lock`` (None where it names none, or its
        experiment is gone: then the claim's pid and age say whether its creator runs)."""
        from mlflow.exceptions import MlflowException

        experiment = lock.tags.get(S.CLAIM_EXPERIMENT)
        try:
            return read_holder(self.client, experiment) if experiment else None
        except MlflowException:  # the study's experiment was deleted for good
            return None

    def _result_pending(self, key: str) -> bool:
        """Whether this study's journal holds a ``finish`` of ``key`` that MLflow has not taken."""
        return self.journal is not None and self.journal.is_file() and _finish_pending(self.journal, key)

    def _description(self) -> str:
        """The text of a claim file: this driver, as a refused one is told, and its journal on a line of its own."""
        text = f"study '{self.study}' (pid {os.getpid()} on {socket.gethostname()})"
        return text + (f"\n{_JOURNAL_LINE}{self.journal}" if self.journal is not None else "")

    def _holder(self, mutex: FileMutex | ExperimentMutex) -> str:
        """Who holds a claim this driver could not take, as far as the claim says."""
        if isinstance(mutex, FileMutex):
            return mutex.read().split("\n", 1)[0] or "another driver"
        lock = self.client.get_experiment_by_name(mutex.name)
        if lock is None:
            return "another driver"
        study, pid, host = (lock.tags.get(t, "?") for t in (S.CLAIM_STUDY, S.LEASE_PID, S.LEASE_HOST))
        return f"study '{study}' (pid {pid} on {host})"


def claimed_by(tracking_uri: str, keys: Iterable[str]) -> dict[str, str]:
    """Which of ``keys`` a live driver claims now, each with who (as its claim says), read without taking any
    (a dry run's view). On a sqlite store a claim file names its holder; one whose holder's pid is gone on this
    host is a dead driver's (its flock went with it), named only while its journal holds the key's result
    (``pending_result``). On a tracking server a lock experiment whose creator
    runs, as ``KeyClaims`` judges it."""
    keys = list(dict.fromkeys(keys))
    store = sqlite_path(tracking_uri)
    if store is not None:
        folder = claims_folder(store.resolve())
        found = {}
        for key in (k for k in keys if (folder / k).is_file()):
            text = FileMutex(folder / key).read()
            holder = text.split("\n", 1)[0]
            if holder and _holder_may_run(holder):
                found[key] = holder
            elif text and (pending := pending_result(text, key)):
                found[key] = pending
        return found
    reader = KeyClaims(tracking_uri, "", "", owner="")
    found = {}
    for key in keys:
        mutex = reader._mutex(key)
        lock = reader.client.get_experiment_by_name(mutex.name)
        if lock is not None and lock.lifecycle_stage == "active" and mutex.alive(lock):
            found[key] = reader._holder(mutex)
    return found


def _holder_may_run(text: str) -> bool:
    """Whether the driver a claim file names (``study 'S' (pid N on HOST)``) may run: not when HOST is this one
    and pid N is gone."""
    match = re.search(r"\(pid (\d+) on (.+)\)$", text)
    if match is None or match.group(2) != socket.gethostname():
        return True
    return pid_alive(int(match.group(1)))
