"""Which code computes a trial's result: a digest of the contents of ``ean``'s sources and of the installed
plugins' packages. Every trial run is tagged with it (``ean.code_digest``); a trial key holds the code version
(``ean.__version__``) only, so a cached result whose code has changed since is named, not hidden."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from ean.plugins import plugin_entry_points
from study import mlflow_schema as S

#: The package whose code computes every trial; plugins' top-level packages are added.
CORE = "ean"


@functools.cache
def code_digest() -> str:
    """``"sha256:<16 hex>"`` of the ``.py`` files (relative path and contents) of ``ean`` and of each installed
    plugin's top-level package, in a fixed order; computed once per process."""
    digest = hashlib.sha256()
    packages = [CORE, *sorted({point.module.split(".")[0] for point in plugin_entry_points()} - {CORE})]
    for name in packages:
        digest.update(name.encode())
        for relative, path in _sources(name):
            digest.update(relative.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()[:16]


def _sources(package: str) -> list[tuple[str, Path]]:
    """(relative path, path) of the package's ``.py`` files, or of a top-level module's file."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None:
        return []
    if not found.submodule_search_locations:
        return [(Path(found.origin).name, Path(found.origin))] if found.origin else []
    files = []
    for folder in map(Path, found.submodule_search_locations):
        files += [(p.relative_to(folder).as_posix(), p) for p in folder.rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files)


def other_code_note(trials: list[str]) -> str | None:
    """A note naming cached or reused ``trials`` (their names) computed by other sources than this code's, or
    None when there are none."""
    if not trials:
        return None
    more = len(trials) - 5
    names = ", ".join(trials[:5]) + (f" and {more} more" if more > 0 else "")
    return (
        f"note: {len(trials)} cached or reused trial(s) were computed by other sources than this "
        f"code's ({S.TAG_CODE_DIGEST} differs: ean or a plugin changed since): {names}. Their results stand; "
        "if the change alters what they compute, run them again (--rerun) or bump ean.__version__."
    )
