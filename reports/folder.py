"""A report folder's record of one study's report: the files it wrote (with their contents' digests) and the runs
its table shows, in ``<out>/.<study>.report.json``.

The next report of the study into the folder removes the files the last one wrote and it did not (a format not
asked for this time, the figure of a removed row) while they are as written, so that no file of the study's
report disagrees with its table; a file the record does not list (the user's own, another study's, another
tool's), or one changed since, is never touched. The figure commands (``reports.trained``) read the runs to draw
the model whose numbers sit beside the figure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ean.files_write import write_text


def record_path(out: Path, study: str) -> Path:
    """``<out>/.<study>.report.json``."""
    return out / f".{study}.report.json"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(out: Path, study: str) -> dict[str, Any] | None:
    try:
        record = json.loads(record_path(out, study).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def remove_stale(out: Path, study: str, written: Iterable[Path]) -> list[Path]:
    """Removes the files the study's last report in ``out`` wrote, this one did not, and nobody changed since.

    Args:
        out: the report folder.
        study: the study's name.
        written: the files this report wrote (or reused) there.

    Returns:
        The files removed.
    """
    record = _read(out, study) or {}
    files = record.get("files")
    kept = {path.resolve() for path in written}
    removed = []
    for name, digest in files.items() if isinstance(files, dict) else ():
        path = out / name
        if path.resolve() in kept or not path.is_file() or out.resolve() not in path.resolve().parents:
            continue
        if _digest(path) == digest:
            path.unlink()
            removed.append(path)
    return removed


def write_record(out: Path, study: str, written: Iterable[Path], runs: list[dict[str, Any]]) -> None:
    """Records the files this report wrote in ``out`` and the runs its table shows.

    Args:
        out: the report folder.
        study: the study's name.
        written: the files written (or reused) under ``out``.
        runs: the runs the table shows, ``{"row", "seed", "column", "run_id", "status"}`` each (``column``: the
            dataset column in a study that compares datasets, else "").
    """
    files = {str(path.relative_to(out)): _digest(path) for path in written if path.is_file()}
    write_text(record_path(out, study), json.dumps({"files": files, "runs": runs}, indent=1, default=str))


def shown_runs(out: Path, study: str) -> list[dict[str, Any]] | None:
    """The runs the table of the study's last report in ``out`` shows; None when the folder has no record."""
    record = _read(out, study)
    runs = record.get("runs") if record else None
    return runs if isinstance(runs, list) else None
