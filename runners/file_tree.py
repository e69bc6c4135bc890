"""The files under a folder, as Hydra and Python's imports reach them: through linked folders too."""

from __future__ import annotations

import os
from pathlib import Path


def files_under(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files ending in ``suffixes`` under ``folder``, sorted, linked folders entered (``Path.rglob`` of Python
    3.11 does not enter one: a config group linked in would escape the checks and the caches); a real folder
    reached twice (linked twice, or a link back up) is walked once, under the first path found in sorted order;
    ``__pycache__`` folders are left out."""
    found, walked = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            dirs[:] = []
            continue
        walked.add(real)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [Path(root) / name for name in files if name.endswith(suffixes)]
    return sorted(found)
