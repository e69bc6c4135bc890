"""The files a computation reads, noted where they are read (``note``) while someone records (``recording``).

Planning a study reads a few files besides its configs: the annotation files that fingerprint a dataset, the
data roots, the weights files a pretrained network or a detector needs. ``runners.plan_cache`` records them
while a study is planned and keeps a cached plan only while each is as it was (size, mtime, or absent).
Nothing is noted when no one records (the cost is one list lookup).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_recorders: list[set[str]] = []


@contextmanager
def recording() -> Iterator[set[str]]:
    """Collects the paths noted inside the block (absolute, as strings); nested recordings each get them."""
    seen: set[str] = set()
    _recorders.append(seen)
    try:
        yield seen
    finally:
        _recorders.remove(seen)


def note(path: str | Path) -> None:
    """Notes that ``path`` was read (or looked for: a path that is not there counts too)."""
    if _recorders:
        text = str(Path(path).absolute())
        for seen in _recorders:
            seen.add(text)
