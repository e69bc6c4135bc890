"""A small on-disk cache of what does not change between invocations: values computed from their key alone.

Entries live in ``$EAN_CACHE_DIR`` (default ``~/.cache/ean``), one JSON file per entry named by the sha256 of
its key, so drivers on one machine share them without locks (a write goes to a temporary file, then is
renamed). A key names everything the value depends on (the code version included), so an entry is never
stale; delete the folder to drop them all. An unreadable entry is a miss; a folder that cannot be written
leaves the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ean.files_write import write_text

ENV = "EAN_CACHE_DIR"


def cache_dir() -> Path:
    """``$EAN_CACHE_DIR``, else ``~/.cache/ean``."""
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "ean")


class DiskCache:
    """JSON values by JSON key, in one folder per kind (``counts``, ``compose``).

    Args:
        kind: the folder's name under ``cache_dir()``.
        folder: another folder (tests).
    """

    def __init__(self, kind: str, folder: Path | None = None):
        self.folder = (folder or cache_dir()) / kind
        self._memory: dict[Path, Any] = {}  # this process's hits and writes (also when the folder is read-only)

    def path(self, key: Any) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return self.folder / f"{digest}.json"

    def stored_keys(self) -> Iterator[Any]:
        """The keys of the entries in the folder (any process's; unreadable entries skipped)."""
        for path in sorted(self.folder.glob("[!.]*.json")):  # not a write in progress (``atomic_path``)
            try:
                yield json.loads(path.read_text())["key"]
            except (OSError, ValueError, KeyError, TypeError):
                continue

    def get(self, key: Any) -> Any | None:
        """The value stored under ``key``, or None."""
        path = self.path(key)
        if path not in self._memory:
            try:
                self._memory[path] = json.loads(path.read_text())["value"]
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return self._memory[path]

    def put(self, key: Any, value: Any) -> None:
        """Stores ``value`` under ``key`` (silently nothing when the folder cannot be written)."""
        path = self.path(key)
        self._memory[path] = value
        try:
            write_text(path, json.dumps({"key": key, "value": value}, default=str))
        except OSError:
            return

    def get_or_compute(self, key: Any, compute: Callable[[], Any]) -> Any:
        """The stored value, else ``compute()`` stored."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value
