"""Finding a study spec: a file path, or a name (``table8``) looked for in the working directory, its ``studies/``,
then the project's studies (``study.locations``)."""

from __future__ import annotations

from pathlib import Path

from study.locations import study_folders
from study.spec import SpecError


def find_spec(study: str | Path, cwd: Path | None = None) -> Path:
    """The spec file ``study`` names: an existing path, else ``<study>.yaml`` in the first of
    ``study_folders(cwd)`` that has it (``./``, ``./studies/``, the project's studies).

    Raises:
        SpecError: none has it; the message lists the places searched and the studies found there.
    """
    path = Path(study)
    if path.is_file():
        return path
    if path.is_dir():
        raise SpecError(f"'{study}' is a folder, not a study spec: name a YAML file in it, e.g. {path / 'table8.yaml'}")
    folders = study_folders(cwd)
    if path.name == str(study) and path.suffix in ("", ".yaml"):  # a name (``table8`` or ``table8.yaml``)
        for folder in folders:
            named = folder / f"{path.stem}.yaml"
            if named.is_file():
                return named
    raise SpecError(
        f"no study '{study}': no such file, and no {path.stem}.yaml in the places searched:\n" + _listing(folders)
    )


def _listing(folders: list[Path]) -> str:
    """One line per folder searched: its path and the studies in it."""
    lines = []
    for folder in folders:
        names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        found = ", ".join(names) if names else ("(no studies)" if folder.is_dir() else "(no such folder)")
        lines.append(f"  {folder}: {found}")
    return "\n".join(lines)
