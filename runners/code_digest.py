"""Which code computes a trial's result: a digest of the contents of ``ean``'s sources and of the installed
plugins' packages. Every trial run is tagged with it (``ean.code_digest``); a trial key holds the code version
(``ean.__version__``) only, so a cached result whose code has changed since is named, not hidden.

Each digest's manifest (every source file and the hash of its contents) is kept in the on-disk cache
(``$EAN_CACHE_DIR/code-manifests``), so that the note on such results names the files that differ (a new
variant shows as its file added and its family's ``__init__.py`` changed), where this machine computed them."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
from pathlib import Path

from ean.files_write import write_text
from ean.plugins import plugin_entry_points
from runners.cache import cache_dir
from study import mlflow_schema as S

#: The package whose code computes every trial; plugins' top-level packages are added.
CORE = "ean"


#: Files a note names at most.
SHOWN_FILES = 6


@functools.cache
def code_digest() -> str:
    """``"sha256:<16 hex>"`` of the ``.py`` files (relative path and contents) of ``ean`` and of each installed
    plugin's top-level package, in a fixed order; computed once per process (its manifest kept on disk)."""
    digest, manifest = hashlib.sha256(), {}
    packages = [CORE, *sorted({point.module.split(".")[0] for point in plugin_entry_points()} - {CORE})]
    for name in packages:
        digest.update(name.encode())
        for relative, path in _sources(name):
            contents = hashlib.sha256(path.read_bytes()).digest()
            digest.update(relative.encode())
            digest.update(contents)
            manifest[f"{name}/{relative}"] = contents.hex()[:16]
    value = "sha256:" + digest.hexdigest()[:16]
    _keep_manifest(value, manifest)
    return value


def _manifest_path(digest: str) -> Path:
    return cache_dir() / "code-manifests" / f"{digest.removeprefix('sha256:')}.json"


def _keep_manifest(digest: str, manifest: dict[str, str]) -> None:
    """Writes the digest's manifest once (a folder that cannot be written leaves it out: it only helps notes)."""
    path = _manifest_path(digest)
    if path.is_file():
        return
    with contextlib.suppress(OSError):
        write_text(path, json.dumps(manifest, sort_keys=True))


def manifest_of(digest: str) -> dict[str, str] | None:
    """The files and content hashes behind ``digest``, where this machine computed it (else None)."""
    try:
        return json.loads(_manifest_path(digest).read_text())
    except (OSError, ValueError):
        return None


def files_changed_since(digests: list[str]) -> str | None:
    """Which sources differ between the code of ``digests`` (other than this process's) and this code's, e.g.
    ``"changed: ean/models/blocks/__init__.py; added: ean/models/blocks/my_block.py"``; None when no manifest
    of them is on this machine."""
    now = manifest_of(code_digest())
    then = [m for m in map(manifest_of, digests) if m is not None]
    if now is None or not then:
        return None
    kinds: dict[str, set[str]] = {"changed": set(), "added": set(), "removed": set()}
    for old in then:
        kinds["changed"] |= {f for f in now.keys() & old.keys() if now[f] != old[f]}
        kinds["added"] |= now.keys() - old.keys()
        kinds["removed"] |= old.keys() - now.keys()
    parts = []
    for kind, files in kinds.items():
        if files:
            shown = sorted(files)[:SHOWN_FILES]
            more = f" and {len(files) - len(shown)} more" if len(files) > len(shown) else ""
            parts.append(f"{kind}: {', '.join(shown)}{more}")
    return "; ".join(parts) or None


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


def other_code_note(trials: list[str], digests: list[str] = ()) -> str | None:
    """A note naming cached or reused ``trials`` (their names) computed by other sources than this code's, and
    the files that differ where the ``digests`` they were computed by are known here; None when there are none."""
    if not trials:
        return None
    more = len(trials) - 5
    names = ", ".join(trials[:5]) + (f" and {more} more" if more > 0 else "")
    files = files_changed_since(list(digests))
    since = f"since them, {files}" if files else "ean or a plugin changed since"
    return (
        f"note: {len(trials)} cached or reused trial(s) were computed by other sources than this "
        f"code's ({S.TAG_CODE_DIGEST} differs; {since}): {names}. Their results stand; if the change alters "
        "what they compute, run them again (--rerun) or bump ean.__version__."
    )
