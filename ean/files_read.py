"""The files a computation reads, noted where they are read (``note``) while someone records (``recording``).

Planning a study reads a few files besides its configs: the annotation files that fingerprint a dataset and
give its classes, the data roots and folders, the weights files a pretrained network or a detector needs.
``runners.plan_cache`` records them while a study is planned and keeps a cached plan only while each is as
it was. A file's state is taken when it is first noted, before it is read: a file that changes while the
study is planned leaves a record that no longer matches. Nothing is noted when no one records (the cost is
one list lookup).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_recorders: list[dict[str, list | None]] = []
_generation = [0]  # recordings started in this process


@contextmanager
def recording() -> Iterator[dict[str, list | None]]:
    """Collects the paths noted inside the block (absolute, as strings), each with its ``file_signature`` when
    first noted; nested recordings each get them."""
    seen: dict[str, list | None] = {}
    _generation[0] += 1
    _recorders.append(seen)
    try:
        yield seen
    finally:
        _recorders.remove(seen)


def generation() -> int:
    """How many recordings this process has started: a memo of what was read keys on it, so that each
    recording reads (and notes) the files again."""
    return _generation[0]


def note(path: str | Path) -> None:
    """Notes that ``path`` is about to be read (or looked for: a path that is not there counts too)."""
    if _recorders:
        text = str(Path(path).absolute())
        state = file_signature(text)
        for seen in _recorders:
            seen.setdefault(text, state)


def file_signature(path: str) -> list | None:
    """What a file or folder is now: ``["file", size, mtime]``, ``["dir", mtime]`` (entries added or removed
    change it), or None when it is not there."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if os.path.isdir(path):
        return ["dir", stat.st_mtime_ns]
    return ["file", stat.st_size, stat.st_mtime_ns]
