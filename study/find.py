"""Finding a study spec: a file path, or a name of the project's studies (``table8`` -> ``studies/table8.yaml``)."""

from __future__ import annotations

from pathlib import Path

from study.spec import SpecError

#: The project's study specs (beside the packages, not relative to the working directory).
STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"


def find_spec(study: str | Path) -> Path:
    """The spec file ``study`` names: an existing path, else ``studies/<study>.yaml`` of the project.

    Raises:
        SpecError: neither exists; the message lists the project's studies.
    """
    path = Path(study)
    if path.is_file():
        return path
    named = STUDIES_DIR / f"{study}.yaml"
    if named.is_file():
        return named
    known = sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))
    raise SpecError(f"no study file '{study}'; studies in {STUDIES_DIR}: {', '.join(known)}")
