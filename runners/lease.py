"""One driver per study at a time: a lease held in the study's MLflow experiment.

The driver that runs a study writes its lease into the experiment's tags (``study.mlflow_schema``: owner id,
host, pid, start time, heartbeat, command) and renews the heartbeat every few seconds from a thread. A second
driver of the same study is refused with a message naming the first, unless the first is dead: on the same
host its pid is gone, on another host its heartbeat is older than ``stale_after_s``. The new driver then
takes the lease over and reconciles the dead driver's runs (``StudyTracker.reconcile``).

MLflow has no compare-and-set. On a sqlite store (the default, one machine) the lease is first an exclusive
``flock`` on a file beside the store (``.<store>.lease-<experiment id>``): atomic, and freed by the kernel when
its process dies, so two drivers that both read a free lease are never both let in. On a tracking server, two
drivers that start within the same instant are told apart by writing the owner, waiting a moment and reading it
back: the one whose id is not there stops (a driver stalled for longer than that between its read and its write
is not caught).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from runners.store_template import sqlite_path
from study import mlflow_schema as S

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0
SETTLE_S = 0.5


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

    def alive(self, stale_after_s: float) -> bool:
        """Whether the holder still runs: its pid on this host, else a recent heartbeat."""
        if not self.owner:
            return False
        if self.host == socket.gethostname():
            return _pid_alive(self.pid)
        return time.time() - self.heartbeat < stale_after_s

    def describe(self) -> str:
        age = time.time() - self.heartbeat
        return (
            f"pid {self.pid} on {self.host}, running since {self.since} (last heartbeat {age:.0f} s ago): "
            f"{self.command or '?'}"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return not _zombie(pid)


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


class StudyLease:
    """The lease of one study's experiment, held by this process from ``acquire`` to ``release``.

    Args:
        tracking_uri: the MLflow store.
        experiment_id: the study's experiment.
        study: the study's name (for messages).
        command: this driver's command line (shown to a refused driver).
        heartbeat_s: seconds between heartbeats.
        stale_after_s: a holder on another host is dead when its heartbeat is older than this.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        study: str,
        command: str,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
    ):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.uri, self.experiment_id, self.study, self.command = tracking_uri, experiment_id, study, command
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: int | None = None  # the flock's file descriptor (sqlite stores)

    def acquire(self) -> Holder | None:
        """Takes the lease; returns the dead driver it took over from (None if it was free).

        Raises:
            LeaseHeld: a live driver holds it (the message names it and what to do).
        """
        if not self._lock_file():
            holder = read_holder(self.client, self.experiment_id)
            raise self._refusal(holder) if holder else LeaseHeld(f"study '{self.study}': another driver is starting it")
        try:
            return self._take()
        except BaseException:
            self._unlock()
            raise

    def _take(self) -> Holder | None:
        previous = read_holder(self.client, self.experiment_id)
        if previous and previous.alive(self.stale_after_s):
            raise self._refusal(previous)
        self._write(since=time.strftime("%Y-%m-%d %H:%M:%S"))
        time.sleep(SETTLE_S)
        now = read_holder(self.client, self.experiment_id)
        if now is None or now.owner != self.owner:
            raise self._refusal(now) if now else LeaseHeld(f"study '{self.study}': another driver took the lease")
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
        self._unlock()

    def _lock_file(self) -> bool:
        """Takes the flock of a sqlite store's lease file; False when another process holds it (True for any
        other store: nothing to lock)."""
        store = sqlite_path(self.uri)
        if store is None:
            return True
        fd = os.open(store.with_name(f".{store.name}.lease-{self.experiment_id}"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # frees the flock
            self._lock = None

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

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                holder = read_holder(self.client, self.experiment_id)
                if holder is None or holder.owner != self.owner:
                    log.warning("the lease of %s was taken by another driver: %s", self.study, holder)
                    return
                self.client.set_experiment_tag(self.experiment_id, S.LEASE_HEARTBEAT, f"{time.time():.3f}")
            except Exception as err:  # an outage of the store: keep trying
                log.warning("lease heartbeat of %s failed: %s", self.study, err)
