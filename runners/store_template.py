"""A new sqlite MLflow store, copied from an empty one that MLflow migrated once.

MLflow creates a sqlite store by running every schema migration of its history (0.8 s on 2 cores), at the
start of each study in a new store and in each test that makes one; opening an existing store takes 0.03 s.
So the first store this MLflow version creates is kept in the on-disk cache (``$EAN_CACHE_DIR``) without its
Default experiment, and a new store is a copy of it: MLflow then finds its schema at the head revision and
creates the Default experiment itself, with the artifact location of the store that opens it. The same
idea as a database server's template databases. Anything unusual (a URI with options, a missing folder, a
failed copy) leaves the creation to MLflow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
from importlib.metadata import version
from pathlib import Path

from runners.cache import cache_dir

log = logging.getLogger(__name__)

SQLITE = "sqlite:///"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI, options (``?...``) left out (relative to the working
    directory when relative), or None for any other URI."""
    if not uri.startswith(SQLITE):
        return None
    return Path(uri.removeprefix(SQLITE).partition("?")[0])


def create_from_template(uri: str) -> bool:
    """Creates the sqlite store of ``uri`` as a copy of the template when it does not exist yet; returns
    whether it did (False: an existing store, another kind of URI, one with options, or a problem: MLflow
    creates it)."""
    path = sqlite_path(uri)
    if path is None or "?" in uri or path.exists() or not path.parent.is_dir():
        return False
    try:
        template = template_path()
        if not template.is_file():
            make_template(template)
        copy_exclusive(template, path)
    except Exception as err:  # an optimisation only: MLflow's own creation reports what is really wrong
        log.debug("new MLflow store %s left to MLflow: %s", path, err)
        return False
    return True


def template_path() -> Path:
    """Where the template of this MLflow version lies."""
    return cache_dir() / f"mlflow-{version('mlflow')}-empty-store.db"


def make_template(target: Path) -> None:
    """Has MLflow create a store in a scratch folder, removes its Default experiment, and moves the file to
    ``target`` in one step (a reader never sees a partial template)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        db = Path(scratch) / "store.db"
        store = SqlAlchemyStore(f"{SQLITE}{db}", str(Path(scratch) / "artifacts"))
        store.engine.dispose()
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            conn.execute("DELETE FROM experiments WHERE experiment_id = 0")
        os.replace(db, target)


def copy_exclusive(template: Path, path: Path) -> None:
    """Copies ``template`` to ``path`` unless ``path`` appears meanwhile (another process created the store
    first: theirs is kept)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(template.read_bytes())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # fails where the file exists: never replaces a store
    finally:
        tmp.unlink(missing_ok=True)
