"""A report folder's record of one study's report: the files it wrote (with their contents' digests), the runs its
table shows and the MLflow store they are in, in ``<out>/.<study>.report.json``.

The next report of the study into the folder removes the files the last one wrote and it did not (a format not
asked for this time, the figure of a removed row) while they are as written, so that no file of the study's
report disagrees with its table; a file the record does not list (the user's own, another study's, another
tool's), or one changed since, is never touched. A report that fails half-way records what it wrote so far
beside the last report's files, so that the next one removes those it does not write again. One report of a
study writes into a folder at a time (a lock file beside the record). The figure commands (``reports.trained``)
read the runs to draw the model whose numbers sit beside the figure.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ean.files_write import write_text


def record_path(out: Path, study: str) -> Path:
    """``<out>/.<study>.report.json``."""
    return out / f".{study}.report.json"


def file_digest(path: Path) -> str:
    """The sha256 of a file's contents."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_record(out: Path, study: str) -> dict[str, Any]:
    """The study's record in ``out`` (empty when there is none, or it cannot be read)."""
    try:
        record = json.loads(record_path(out, study).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


class ReportFolder:
    """The study's report being written into ``out``: a context that holds the folder's lock for the study.

    Args:
        out: the report folder (it exists).
        study: the study's name.
        tracking_uri: the MLflow store of the runs the table shows.
    """

    def __init__(self, out: Path, study: str, tracking_uri: str):
        self.out, self.study, self.tracking_uri = out, study, tracking_uri
        self._lock = None

    def __enter__(self) -> ReportFolder:
        self._lock = (self.out / f".{self.study}.report.lock").open("a")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.earlier = read_record(self.out, self.study)
        return self

    def __exit__(self, *exc) -> None:
        self._lock.close()  # releases the lock

    def _earlier_files(self) -> dict[str, str]:
        files = self.earlier.get("files")
        return files if isinstance(files, dict) else {}

    def finish(self, written: Iterable[Path], runs: list[dict[str, Any]]) -> tuple[list[Path], list[str]]:
        """Removes the files the last report wrote, this one did not, and nobody changed since; records this one.

        Args:
            written: the files this report wrote (or reused) under ``out``.
            runs: the runs its table shows, ``{"row", "seed", "column", "run_id", "status"}`` each (``column``: the
                dataset column in a study that compares datasets, else "").

        Returns:
            The files removed, and a line for each that could not be (kept in the record for the next report).
        """
        written = list(written)
        kept = {os.path.abspath(path) for path in written}
        removed, problems, left = [], [], {}
        for name, digest in self._earlier_files().items():
            path = self.out / name
            if not _inside(name) or os.path.abspath(path) in kept or not path.is_file():
                continue
            try:
                if file_digest(path) == digest:
                    path.unlink()
                    removed.append(path)
            except OSError as err:
                problems.append(f"{path} was not removed ({err.strerror or err}): the last report wrote it")
                left[name] = digest
        self._write({**left, **self._digests(written)}, runs)
        return removed, problems

    def failed(self, written: Iterable[Path]) -> None:
        """Records, after a failure, the files this report wrote so far beside those of the last report."""
        with contextlib.suppress(OSError):  # the failure itself is what the caller reports
            self._write({**self._earlier_files(), **self._digests(written)}, self.earlier.get("runs", []))

    def _digests(self, written: Iterable[Path]) -> dict[str, str]:
        return {str(path.relative_to(self.out)): file_digest(path) for path in written if path.is_file()}

    def _write(self, files: dict[str, str], runs: list) -> None:
        record = {"files": files, "runs": runs, "tracking_uri": self.tracking_uri}
        write_text(record_path(self.out, self.study), json.dumps(record, indent=1, default=str))


def _inside(name: str) -> bool:
    """Whether a recorded name lies in the folder: relative, without ``..`` (a linked subfolder, ``figures/``
    made a link to the paper's folder say, is followed: the report wrote there)."""
    return bool(name) and not os.path.isabs(name) and ".." not in Path(name).parts


def shown_runs(out: Path, study: str) -> tuple[list[dict[str, Any]], str | None] | None:
    """The runs the table of the study's last report in ``out`` shows, and the MLflow store they are in; None
    when the folder has no record of the study."""
    record = read_record(out, study)
    runs = record.get("runs")
    return (runs, record.get("tracking_uri")) if isinstance(runs, list) else None
