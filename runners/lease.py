"""One driver per study at a time: a lease held in the study's MLflow experiment.

The driver that runs a study writes its lease into the experiment's tags (``study.mlflow_schema``: owner id,
host, pid, start time, heartbeat, command) and renews the heartbeat every few seconds from a thread. A second
driver of the same study is refused with a message naming the first, unless the first is dead: on the same
host its pid is gone, on another host its heartbeat is older than ``stale_after_s``. The new driver then
takes the lease over and reconciles the dead driver's runs (``StudyTracker.reconcile``).

MLflow has no compare-and-set, so a mutex comes first, then the tags. On a sqlite store (the default, one
machine) it is an exclusive ``flock`` on a file beside the store's file, a symlink followed
(``.<store>.lease-<experiment id>``): freed by the kernel when its process dies. On any other store (a tracking
server) it is an experiment of a reserved name (``lock_experiment_name``), which exists once: MLflow's
experiment names are unique in its database, so of two drivers creating it at the same instant exactly one
succeeds. The lock experiment carries its creator's id, host and pid; a dead creator's lock is renamed away and
deleted (soft: MLflow's ``gc`` purges it) before a new one is created, and released the same way. Two drivers
that both read a free lease, however long either stalls in between, are never both let in.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runners.store_template import sqlite_path
from study import mlflow_schema as S

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0


class LeaseHeld(RuntimeError):
    """Another live driver runs this study; the message names it."""


@dataclass(frozen=True)
class Holder:
    """The driver named in an experiment's lease tags."""

    owner: str
    host: str
    pid: int
    since: str
    heartbeat: float
    command: str
    beaten: bool = True  # ``heartbeat`` is one the holder wrote (not a lock's creation time, the server's clock)

    def alive(self, stale_after_s: float) -> bool:
        """Whether the holder still runs: its pid on this host (a process of that pid started after the holder's
        heartbeat is another one: a container restarted with the same host name and pid), else a recent
        heartbeat."""
        if not self.owner:
            return False
        if self.host == socket.gethostname():
            return pid_alive(self.pid) and not (self.beaten and started_after(self.pid, self.heartbeat))
        return time.time() - self.heartbeat < stale_after_s

    def describe(self) -> str:
        age = time.time() - self.heartbeat
        return (
            f"pid {self.pid} on {self.host}, running since {self.since} (last heartbeat {age:.0f} s ago): "
            f"{self.command or '?'}"
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return not _zombie(pid)


START_SLACK_S = 2.0  # /proc gives a process's start to the clock tick, the boot time to the second


def started_after(pid: int, when: float) -> bool:
    """Whether process ``pid`` started after ``when`` (Unix time), so cannot have been running then; False
    where its start is unknown (no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return boot + ticks / os.sysconf("SC_CLK_TCK") > when + START_SLACK_S


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def read_holder(client, experiment_id: str) -> Holder | None:
    """The lease's holder as the experiment's tags say (None when nobody holds it)."""
    tags = client.get_experiment(experiment_id).tags
    if not tags.get(S.LEASE_OWNER):
        return None
    return Holder(
        owner=tags[S.LEASE_OWNER],
        host=tags.get(S.LEASE_HOST, "?"),
        pid=int(tags.get(S.LEASE_PID, "0") or 0),
        since=tags.get(S.LEASE_SINCE, "?"),
        heartbeat=float(tags.get(S.LEASE_HEARTBEAT, "0") or 0),
        command=tags.get(S.LEASE_COMMAND, ""),
    )


def lease_file(store: Path, experiment_id: str) -> Path:
    """The file beside a sqlite store whose ``flock`` is the mutex of the study of ``experiment_id``."""
    return store.with_name(f".{store.name}.lease-{experiment_id}")


def lock_experiment_name(experiment_id: str) -> str:
    """The name of the experiment that is a tracking server's mutex for the study of ``experiment_id``."""
    return f"{S.LEASE_LOCK_PREFIX}{experiment_id}"


class FileMutex:
    """An exclusive ``flock`` on a file (beside a sqlite store), held from ``take`` to ``give``."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def take(self) -> bool:
        """Takes the flock; False when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def give(self, keep_text: bool = False) -> None:
        """Frees the flock; the file's text, which named the holder, is emptied unless ``keep_text``."""
        if self._fd is not None:
            if not keep_text:
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # frees the flock
            self._fd = None

    def write(self, text: str) -> None:
        """Replaces the file's text (while holding the flock: who holds it, for those refused)."""
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)

    def read(self) -> str:
        """The file's text ("" where there is none)."""
        try:
            return self.path.read_text(errors="replace").strip()
        except OSError:
            return ""


class ExperimentMutex:
    """A lock experiment of a reserved name, held from ``take`` to ``give``: MLflow creates a name once.

    Args:
        client: an ``MlflowClient`` of the store.
        name: the lock experiment's name (``lock_experiment_name`` for a study's lease).
        owner: this driver's lease id (a tag of the lock experiment, with its host and pid).
        study_holder: reads, from a lock experiment, the holder in its study's tags (``read_holder``), which a live
            lock's creator keeps beating once it has written it.
        stale_after_s: a creator on another host is dead when its heartbeat (or, before its first, the lock's
            creation) is older than this.
        tags: more tags of the lock experiment.
    """

    def __init__(
        self,
        client,
        name: str,
        owner: str,
        study_holder: Callable[[Any], Holder | None],
        stale_after_s: float,
        tags: dict[str, str] | None = None,
    ):
        self.client, self.name, self.owner, self.study_holder = client, name, owner, study_holder
        self.stale_after_s, self.tags = stale_after_s, tags or {}

    def take(self) -> bool:
        """Creates the lock experiment; a dead creator's lock is discarded first. False when a live one holds it."""
        from mlflow.exceptions import MlflowException

        tags = {**self.tags, S.LEASE_OWNER: self.owner, S.LEASE_HOST: socket.gethostname()}
        tags[S.LEASE_PID] = str(os.getpid())
        for _ in range(3):  # a dead lock discarded, or one released meanwhile: create again
            try:
                self.client.create_experiment(self.name, tags=tags)
                return True
            except MlflowException as err:
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            lock = self.client.get_experiment_by_name(self.name)
            if lock is None:
                continue  # released meanwhile
            if lock.lifecycle_stage != "active":  # deleted by hand (its name stays taken): restored to discard it
                self._discard(lock.experiment_id, restore=True)
            elif lock.tags.get(S.LEASE_OWNER) == self.owner:  # this driver's own, left by a release that failed
                return True
            elif self.alive(lock):
                return False
            else:
                self._discard(lock.experiment_id)
        return False

    def give(self) -> None:
        """Discards the lock experiment if this driver created it."""
        lock = self.client.get_experiment_by_name(self.name)
        if lock is not None and lock.tags.get(S.LEASE_OWNER) == self.owner:
            self._discard(lock.experiment_id)

    def alive(self, lock) -> bool:
        """Whether the lock's creator runs: by its heartbeat in the study's tags once it wrote them, else by
        its pid on this host or the lock's age."""
        owner = lock.tags.get(S.LEASE_OWNER, "")
        holder = self.study_holder(lock)
        if holder is None or holder.owner != owner:
            created = (lock.creation_time or 0) / 1000
            holder = Holder(owner or "?", lock.tags.get(S.LEASE_HOST, "?"), int(lock.tags.get(S.LEASE_PID) or 0),
                            since="?", heartbeat=created, command="", beaten=False)  # fmt: skip
        return holder.alive(self.stale_after_s)

    def _discard(self, lock_id: str, restore: bool = False) -> None:
        """Renames the lock away (freeing its name) and deletes it (``restore``: a deleted lock, which MLflow
        renames only once restored); another driver that did so first wins."""
        from mlflow.exceptions import MlflowException

        try:
            if restore:
                self.client.restore_experiment(lock_id)
            self.client.rename_experiment(lock_id, f"{self.name}.released-{uuid.uuid4().hex}")
            self.client.delete_experiment(lock_id)
        except MlflowException as err:  # already renamed or deleted by another driver
            log.debug("lock experiment %s: %s", lock_id, err)


class StudyLease:
    """The lease of one study's experiment, held by this process from ``acquire`` to ``release``.

    Args:
        tracking_uri: the MLflow store.
        experiment_id: the study's experiment.
        study: the study's name (for messages).
        command: this driver's command line (shown to a refused driver).
        heartbeat_s: seconds between heartbeats.
        stale_after_s: a holder on another host is dead when its heartbeat is older than this.
        mutex: ``"file"`` (a flock beside a sqlite store) or ``"experiment"`` (a lock experiment, any store);
            None: the file for a sqlite store, else the experiment.
        on_lost: called (from the heartbeat's thread) with the new holder when a heartbeat finds the lease
            held by another driver: one on another host that judged this one dead (its heartbeats could not
            reach the store for ``stale_after_s``); this driver must then stop and write nothing more.
        owner: this driver's id in the lease (default: a new one); a lease or lock already carrying it is this
            driver's own, left by an earlier lease of it that could not be freed (``--wait`` runs a study again
            with one id), and is taken over. So two leases held at once never share one.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        study: str,
        command: str,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
        mutex: Literal["file", "experiment"] | None = None,
        on_lost: Callable[[Holder | None], None] | None = None,
        owner: str | None = None,
    ):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.uri, self.experiment_id, self.study, self.command = tracking_uri, experiment_id, study, command
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.owner = owner or uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_lost = on_lost
        self.lost_to: Holder | None = None  # the driver that took the lease over (set with ``lost``)
        self.lost = threading.Event()
        self.watch: Callable[[], str | None] | None = None  # also asked each heartbeat: what else this driver lost
        self.lost_claim: str | None = None  # what ``watch`` said was lost (set with ``lost``)
        store = sqlite_path(tracking_uri)
        if mutex == "file" or (mutex is None and store is not None):
            if store is None:
                raise ValueError(f"a file mutex needs a sqlite store, not {tracking_uri!r}")
            # beside the file itself: drivers that name it through a symlink share the mutex
            self._mutex: FileMutex | ExperimentMutex = FileMutex(lease_file(store.resolve(), experiment_id))
        else:
            name, holder = lock_experiment_name(experiment_id), lambda lock: read_holder(self.client, experiment_id)
            self._mutex = ExperimentMutex(self.client, name, self.owner, holder, stale_after_s)

    def acquire(self) -> Holder | None:
        """Takes the lease; returns the dead driver it took over from (None if it was free).

        Raises:
            LeaseHeld: a live driver holds it (the message names it and what to do).
        """
        if not self._mutex.take():
            holder = read_holder(self.client, self.experiment_id)
            raise self._refusal(holder) if holder else LeaseHeld(f"study '{self.study}': another driver is starting it")
        try:
            return self._take()
        except BaseException:
            self._mutex.give()
            raise

    def _take(self) -> Holder | None:
        previous = read_holder(self.client, self.experiment_id)
        if previous and previous.owner == self.owner:  # this driver's own, left by a release that failed
            previous = None
        if previous and previous.alive(self.stale_after_s):  # a holder on another host sharing a sqlite file
            raise self._refusal(previous)
        self._write(since=time.strftime("%Y-%m-%d %H:%M:%S"))
        self._thread = threading.Thread(target=self._beat, name="ean-lease", daemon=True)
        self._thread.start()
        return previous

    def release(self) -> None:
        """Stops the heartbeat and frees the lease (if this driver still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 5)
        try:
            holder = read_holder(self.client, self.experiment_id)
            if holder and holder.owner == self.owner:
                self.client.set_experiment_tag(self.experiment_id, S.LEASE_OWNER, "")
        except Exception as err:  # the store is gone: the lease goes stale by itself
            log.warning("could not release the lease of %s: %s", self.study, err)
        try:
            self._mutex.give()
        except Exception as err:  # a lock experiment left: its creator's pid or age frees it
            log.warning("could not release the lock of %s: %s", self.study, err)

    def lost_error(self) -> LeaseHeld:
        """The error of a driver whose lease (or a trial key it claimed: ``watch``) another driver took over
        (``lost``)."""
        if self.lost_claim is not None:
            return LeaseHeld(
                f"study '{self.study}': {self.lost_claim}, judging this driver dead (its heartbeats had not reached "
                f"the store for {self.stale_after_s:.0f} s); this driver stopped its trials and wrote nothing more "
                "to MLflow: its writes wait in its journal, and the same command goes on once the other ends"
            )
        who = self.lost_to.describe() if self.lost_to else "nobody holds it now"
        return LeaseHeld(
            f"study '{self.study}': another driver took the lease over while this one ran ({who}), judging this "
            f"one dead (its heartbeats had not reached the store for {self.stale_after_s:.0f} s); this driver "
            "stopped its trials and wrote nothing more to MLflow: the other one goes on with the study"
        )

    def _refusal(self, holder: Holder) -> LeaseHeld:
        return LeaseHeld(
            f"study '{self.study}' is being run by another driver: {holder.describe()}. Wait for it to end or stop "
            f"it (Ctrl-C); a driver that died is taken over at once on its host, or from another host once its "
            f"heartbeat is {self.stale_after_s:.0f} s old"
        )

    def _write(self, since: str) -> None:
        tags = {  # the owner last: a reader that sees it sees the rest
            S.LEASE_HOST: socket.gethostname(),
            S.LEASE_PID: str(os.getpid()),
            S.LEASE_SINCE: since,
            S.LEASE_HEARTBEAT: f"{time.time():.3f}",
            S.LEASE_COMMAND: self.command[:4000],
            S.LEASE_OWNER: self.owner,
        }
        for key, value in tags.items():
            self.client.set_experiment_tag(self.experiment_id, key, value)

    def holds(self) -> bool:
        """Whether this driver still holds the lease, read from the store now; when another driver took it
        over, ``lost`` is set and ``on_lost`` called (once). Raises what the store raises when it does not answer."""
        if self.lost.is_set():
            return False
        holder = read_holder(self.client, self.experiment_id)
        if holder is not None and holder.owner == self.owner:
            return True
        log.error("the lease of %s was taken by another driver: %s", self.study, holder)
        self.lost_to = holder
        return self._lose(holder)

    def _watched(self) -> bool:
        """False once ``watch`` says this driver lost something it holds besides the lease (a trial key's claim
        another driver took over): ``lost`` is set and ``on_lost`` called (once), as for the lease."""
        said = self.watch() if self.watch is not None and not self.lost.is_set() else None
        if said is None:
            return not self.lost.is_set()
        log.error("study %s: %s", self.study, said)
        self.lost_claim = said
        return self._lose(None)

    def _lose(self, holder: Holder | None) -> bool:
        """Sets ``lost`` and calls ``on_lost`` with ``holder`` (the lease's new holder; None for a claim); False."""
        self.lost.set()
        if self.on_lost is not None:
            self.on_lost(holder)
        return False

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.beat():
                    return
            except Exception as err:  # an outage of the store: keep trying
                log.warning("lease heartbeat of %s failed: %s", self.study, err)

    def beat(self) -> bool:
        """One heartbeat: False (and ``lost`` set) once this driver lost the lease or what ``watch`` watches, else
        the heartbeat written. Raises what the store raises when it does not answer."""
        if not self.holds():
            return False
        self.client.set_experiment_tag(self.experiment_id, S.LEASE_HEARTBEAT, f"{time.time():.3f}")
        return self._watched()  # after the beat: a slow store's lookups of the claims never delay it
