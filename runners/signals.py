"""SIGINT and SIGTERM stop a study cleanly: the trials are stopped, their runs and the parent marked KILLED, the
command that resumes printed, and the driver exits 130 (SIGINT) or 143 (SIGTERM).

Outside Ray Tune's loop a signal raises ``Stopped`` in the main thread. Inside it (``deferred``), the signal
is only recorded: an exception raised in the middle of Ray's compiled calls surfaces as a ``SystemError``, so
Tune is asked to stop instead (``StopOnSignal``, a Tune stopper) and the driver raises ``Stopped`` once
``Tuner.fit`` has returned. Ray installs its own SIGTERM handler when it starts a local cluster and Tune its
own SIGINT handler (whose advice, ``Tuner.restore``, does not apply here: the same command resumes), so
``install`` runs again after Ray has started and ``TUNE_DISABLE_SIGINT_HANDLER`` keeps Tune's away.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state: dict[str, int | bool | None] = {"signum": None, "deferred": False}


class Stopped(BaseException):
    """A stop by SIGINT or SIGTERM (a BaseException: no ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _state["signum"] is None:
        _state["signum"] = signum
    if not _state["deferred"]:
        ignore()  # a second Ctrl-C must not interrupt the clean-up
        raise Stopped(signum)


def install() -> None:
    """Makes SIGINT and SIGTERM stop the driver (call again after ``ray.init``)."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)


def ignore() -> None:
    """Ignores SIGINT and SIGTERM while the driver cleans up after the first."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def request(signum: int = signal.SIGTERM) -> None:
    """Asks for a stop from inside the driver (a thread that found it must stop), as ``signum`` would."""
    if _state["signum"] is None:
        _state["signum"] = signum


def requested() -> Stopped | None:
    """The stop a signal asked for, if one came."""
    return Stopped(_state["signum"]) if _state["signum"] is not None else None


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block a signal is only recorded (``requested``); Tune polls it through ``StopOnSignal``."""
    _state["deferred"] = True
    try:
        yield
    finally:
        _state["deferred"] = False
