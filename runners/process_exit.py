"""Ending a command-line process once its work is done, without Python's teardown of what it imported.

A study's driver imports Ray, Tune, MLflow, Hydra and pandas. After its last line, Python's finalisation of
those modules took 2.5 s on 2 cores (a one-trial study, start to exit: 18.6 -> 16.8 s, medians of 3 paired
runs), at the end of every invocation, cached ones included. :func:`exit_now` keeps what a normal exit does
that matters: the exit handlers run (Ray's shutdown of the local cluster the driver started, logging's flush,
MLflow's), stdout and stderr are flushed; then ``os._exit`` ends the process. While a non-daemon thread still
runs, a normal exit is taken instead (``os._exit`` would cut that thread off).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def exit_now(status: int) -> NoReturn:
    """Exits with ``status`` after the exit handlers ran and the standard streams were flushed."""
    run_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's; absent elsewhere: a normal exit
    main = threading.main_thread()
    working = [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]
    if working or run_handlers is None:
        sys.exit(status)
    run_handlers()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):  # the originals too, if replaced
        with contextlib.suppress(AttributeError, OSError, ValueError):  # none, or a closed pipe or stream
            stream.flush()
    os._exit(status)
