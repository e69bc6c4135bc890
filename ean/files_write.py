"""Files written whole: a reader, another writer of the same file, or a process that dies mid-write sees the old
file or the new one, never a part (checkpoints, score files, report files, cache entries, manifests).

``atomic_path`` hands out a temporary path beside the target (same folder, same suffix, so writers that infer a
format from the name work), a new file of a random name (created exclusively: two writers of one target, on
one host or on two sharing the folder, never share it); when the block ends without an error it replaces the
target in one step (``os.replace``). With ``durable``, the new file is flushed to disk before (an error doing
so fails the write and keeps the old file) and its folder after, so that a machine that loses power keeps the
old file or the whole new one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new contents to; it replaces ``path`` when the block ends without an
    error. On an error ``path`` is left as it was and the temporary file is removed.

    Args:
        path: the file to write (its folder is made if missing).
        durable: fsync the new file before the replace, and the folder after it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file_beside(path)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str, durable: bool = False) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` whole (see :func:`atomic_path`); returns ``path`` as a Path."""
    with atomic_path(path, durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _new_file_beside(path: Path) -> Path:
    """An empty new file ``.<stem>.<pid>-<random><suffix>`` in ``path``'s folder (the mode the umask gives)."""
    while True:
        tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:  # pragma: no cover - one chance in 2**32
            continue
        return tmp


def _fsync_file(path: Path) -> None:
    """Flushes a file's contents to disk; an error (a full or failing disk) is raised."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    """Flushes a folder's entries to disk (the replace); nothing where folders cannot be opened or flushed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why files cannot be written in the folder ``path`` (created if need be), or None: a file stands at it
    or on the way to it, or the nearest folder that exists is not writable."""
    target = Path(os.path.abspath(path))
    for part in (target, *target.parents):
        if part.exists():
            if not part.is_dir():
                return f"{part} is a file, not a folder"
            if not os.access(part, os.W_OK | os.X_OK):
                return f"{part} is not writable"
            return None
    return None
