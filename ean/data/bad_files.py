"""Broken files: skipped with a warning, counted across DataLoader workers, reported per epoch.

Workers are separate processes, so every skip is appended as one line (``path<TAB>reason``) to a small
log file created by the process that built the dataset; any process can read the log. When the distinct
bad files exceed ``max_fraction`` of the dataset, :meth:`BadFiles.record` raises :class:`DataError`
naming them (in a worker, the DataLoader re-raises it in the training process).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import weakref
from dataclasses import dataclass, field

from ean.data.errors import DataError


@dataclass
class BadFileReport:
    """Skips since the previous report (one epoch, when called once per epoch).

    Attributes:
        skipped: samples skipped because their file was bad (a file can be skipped more than once).
        new_files: bad files first seen in this period: path -> reason.
        total_files: distinct bad files seen so far.
        dataset_size: videos in the dataset.
    """

    skipped: int = 0
    new_files: dict[str, str] = field(default_factory=dict)
    total_files: int = 0
    dataset_size: int = 0

    def __str__(self) -> str:
        head = f"{self.skipped} sample(s) skipped for bad files; {self.total_files} of {self.dataset_size} files bad"
        return "\n".join([head] + [f"  new bad file: {p} ({r})" for p, r in self.new_files.items()])


class BadFiles:
    """The bad files of one dataset, shared by the processes that read it.

    Args:
        dataset_size: videos in the dataset (the denominator of the bad fraction).
        max_fraction: stop (DataError) when more than this fraction of the files is bad.
    """

    def __init__(self, dataset_size: int, max_fraction: float = 0.01):
        self.dataset_size, self.max_fraction = dataset_size, max_fraction
        folder = tempfile.mkdtemp(prefix="ean-bad-files-")
        self.log_path = os.path.join(folder, "bad_files.tsv")
        open(self.log_path, "w").close()
        self._cleanup = weakref.finalize(self, _remove_folder, folder, os.getpid())
        self._known: dict[str, str] = {}
        self._read_offset = 0
        self._seen: dict[str, str] = {}

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if k != "_cleanup"}
        return {**state, "_known": {}, "_cleanup": None}

    def is_bad(self, path: str) -> bool:
        """Whether this process already found ``path`` bad (it is then skipped without decoding)."""
        return path in self._known

    def record(self, path: str, reason: str | None = None) -> None:
        """Logs one skip of ``path`` (``reason``: why; None for a file found bad before); warns the first
        time; raises DataError above the allowed fraction."""
        reason = " ".join((reason or self._known.get(path, "bad")).split())
        with open(self.log_path, "a") as log:
            log.write(f"{path}\t{reason}\n")
        if path in self._known:
            return
        self._known[path] = reason
        warnings.warn(f"skipping bad video file {path}: {reason}", stacklevel=2)
        self.check()

    def check(self) -> None:
        """Raises DataError if more than ``max_fraction`` of the dataset's files are bad."""
        files = self.files()
        if len(files) > self.max_fraction * self.dataset_size:
            listed = "\n".join(f"  {p}: {r}" for p, r in list(files.items())[:20])
            more = f"\n  ... and {len(files) - 20} more" if len(files) > 20 else ""
            raise DataError(
                f"{len(files)} of {self.dataset_size} files are bad, more than max_bad_fraction="
                f"{self.max_fraction:g} allows:\n{listed}{more}\n"
                "List them all with `python -m ean.data.check`, then fix or remove them, or raise max_bad_fraction."
            )

    def files(self) -> dict[str, str]:
        """Every distinct bad file seen by any process: path -> reason."""
        found: dict[str, str] = {}
        for path, reason in _parse(self._read_all()):
            found.setdefault(path, reason)
        return found

    def epoch_report(self) -> BadFileReport:
        """Skips since the previous call (call once per epoch in the process that built the dataset)."""
        with open(self.log_path) as log:
            log.seek(self._read_offset)
            text = log.read()
            self._read_offset = log.tell()
        skips = list(_parse(text))
        new = {p: r for p, r in skips if p not in self._seen}
        self._seen.update(new)
        return BadFileReport(len(skips), new, len(self.files()), self.dataset_size)

    def _read_all(self) -> str:
        with open(self.log_path) as log:
            return log.read()


def _remove_folder(folder: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked worker's copy must not delete the log its parent still reads
        shutil.rmtree(folder, ignore_errors=True)


def _parse(text: str):
    for line in text.splitlines():
        path, _, reason = line.partition("\t")
        if path:
            yield path, reason
