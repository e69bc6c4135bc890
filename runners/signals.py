"""SIGINT and SIGTERM stop a study cleanly: the driver raises ``Stopped`` in its main thread, stops its trials,
marks their runs KILLED and exits 130 (SIGINT) or 143 (SIGTERM), printing the command that resumes.

Ray installs its own SIGTERM handler when it starts a local cluster and Tune its own SIGINT handler in
``Tuner.fit`` (whose advice, ``Tuner.restore``, does not apply here: the same command resumes), so
``install`` runs again after Ray has started and ``TUNE_DISABLE_SIGINT_HANDLER`` keeps Tune's away.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """Raised in the driver's main thread by SIGINT or SIGTERM (a BaseException: no ``except Exception`` in
    Ray or MLflow swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    ignore()  # a second Ctrl-C must not interrupt the clean-up
    raise Stopped(signum)


def install() -> None:
    """Makes SIGINT and SIGTERM raise ``Stopped`` in the main thread (call again after ``ray.init``)."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stopped)


def ignore() -> None:
    """Ignores SIGINT and SIGTERM while the driver cleans up after the first."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
