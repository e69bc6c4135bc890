"""The version of a local sqlite MLflow store: a value that changes with every write to it, read without MLflow.

SQLite keeps a file change counter in its database header (4 bytes, big-endian, at offset 24), which every
write transaction increments in the rollback-journal mode MLflow's SQLAlchemy store uses
(https://www.sqlite.org/fileformat.html, "File change counter": "each process can detect database changes from
other processes by monitoring the change counter"). With the file's identity, size and modification time it
tells whether anything was written since a read, so a read of the store can be kept until the store changes.

A store with no version: any URI other than a ``sqlite:///`` file, a file that is not there or not a sqlite
database, a database in WAL mode (its counter is not kept: writes go to the ``-wal`` file), or a journal beside
it (a write in progress, or one cut short that the next writer rolls back). Its readers ask MLflow.

A version comes back only when the file itself does (a backup copied over the store with its mtime kept, e.g.
``cp -p``): what was read of the store at that version is then true of it again. On a network file system
the header is read as cached by the client (fresh with the default close-to-open consistency; not with
``nocto`` or long attribute caching: keep such a store on a local disk, or use a tracking server).
"""

from __future__ import annotations

import os
from pathlib import Path

from study.tracking_check import SQLITE_HEADER, sqlite_file

#: Header bytes 18 and 19 (the file format's write and read versions): 1 = rollback journal, 2 = WAL.
_ROLLBACK_JOURNAL = 1


def store_version(uri: str) -> str | None:
    """The version of the sqlite store of ``uri`` now (``"INODE:SIZE:MTIME_NS:COUNTER"`` with the file's device),
    or None when it has none (see the module's docstring).

    Take it before reading the store: a read kept with the version taken after it could hide a write made
    during the read.
    """
    name = sqlite_file(uri)
    if name is None:
        return None
    path = Path(name).resolve()  # SQLite writes its journal beside the file a symlink names
    if _journaled(path):
        return None
    try:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            header = f.read(100)
    except OSError:
        return None
    modes = header[18:20]
    if len(header) < 100 or not header.startswith(SQLITE_HEADER) or modes != bytes([_ROLLBACK_JOURNAL] * 2):
        return None
    if _journaled(path):  # a write began meanwhile
        return None
    counter = int.from_bytes(header[24:28], "big")
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{counter}"


def _journaled(path: Path) -> bool:
    """Whether a journal lies beside the database (a write in progress or cut short, or WAL mode)."""
    return any(path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-journal"))
