"""The files a computation reads, noted where they are read (``note``) while someone records (``recording``).

Planning a study reads a few files besides its configs: the annotation files that fingerprint a dataset and
give its classes, the data roots and folders, the weights files a pretrained network or a detector needs.
``runners.plan_cache`` records them while a study is planned and keeps a cached plan only while each is as
it was. A file's state is taken when it is first noted, before it is read: a file that changes while the
study is planned leaves a record that no longer matches. Nothing is noted when no one records (the cost is
one list lookup). ``memo_while_unchanged`` keeps a computation's answer in the process on the same terms (the
data fingerprint and class count, asked once per trial of a plan).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_recorders: list[dict[str, list | None]] = []


@contextmanager
def recording() -> Iterator[dict[str, list | None]]:
    """Collects the paths noted inside the block (absolute, as strings), each with its ``file_signature`` when
    first noted; nested recordings each get them."""
    seen: dict[str, list | None] = {}
    _recorders.append(seen)
    try:
        yield seen
    finally:  # by identity: an inner recording may hold what an outer one holds (list.remove compares)
        del _recorders[next(i for i, r in enumerate(_recorders) if r is seen)]


def note(path: str | Path) -> None:
    """Notes that ``path`` is about to be read (or looked for: a path that is not there counts too)."""
    if _recorders:
        text = str(Path(path).absolute())
        state = file_signature(text)
        for seen in _recorders:
            seen.setdefault(text, state)


def file_signature(path: str) -> list | None:
    """What a file or folder is now, through links: ``["file", size, mtime, inode, ctime]``, ``["dir", mtime,
    inode, ctime]`` (entries added or removed change it), or None when it is not there. The inode and the
    change time (which ``touch`` and ``cp -p`` cannot set) tell a file replaced by another of the same size and
    mtime, and a link pointed elsewhere."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    identity = [stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]
    if os.path.isdir(path):
        return ["dir", *identity]
    return ["file", stat.st_size, *identity]


def unchanged(files: dict[str, list | None]) -> bool:
    """Whether each of ``files`` (path -> ``file_signature`` as recorded) is as it was."""
    return all(file_signature(path) == state for path, state in files.items())


def memo_while_unchanged(compute: Callable[[str], T]) -> Callable[[str], T]:
    """Memoises ``compute(key)``, which reads files, for as long as each file it noted is as it was; a memoised
    answer notes those files again for whoever records (a cached plan must still see them)."""
    memo: dict[str, tuple[dict[str, list | None], T]] = {}

    @functools.wraps(compute)
    def memoised(key: str) -> T:
        hit = memo.get(key)
        if hit is not None and unchanged(hit[0]):
            for path in hit[0]:
                note(path)
            return hit[1]
        with recording() as read:
            value = compute(key)
        memo[key] = (dict(read), value)
        return value

    return memoised
