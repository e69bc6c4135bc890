"""Where the project's studies, shared profiles and config groups lie, and where a user's own studies are looked for.

The repository's ``studies/`` folder ships inside the installed distribution as the data-only package
``ean_studies`` (``[tool.setuptools.package-dir]`` in ``pyproject.toml``), so a plain ``pip install .`` finds
the paper's studies from any directory. Code run from a checkout uses that checkout's own ``studies/`` (installed
or not, and whichever checkout is the installed one), so its config groups always match its code.
This module is the one home of these locations; everything else imports them from here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The importable name of the ``studies/`` folder in an installed distribution.
PACKAGE = "ean_studies"
_TOP = Path(__file__).resolve().parents[1]
#: The checkout's ``studies/`` folder, where this code runs from a checkout (None in an installed wheel, which has
#: no ``pyproject.toml`` beside its packages).
CHECKOUT_STUDIES = _TOP / "studies" if (_TOP / "pyproject.toml").is_file() else None


def packaged_studies() -> Path:
    """The folder of the project's studies: the ``studies/`` beside this code in a checkout, else the installed
    ``ean_studies`` package (an installed wheel has no ``studies/`` beside its packages).

    Raises:
        FileNotFoundError: neither is there (a broken install).
    """
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in [*([CHECKOUT_STUDIES] if CHECKOUT_STUDIES else []), *map(Path, locations)]:
        if (folder / "conf" / "config.yaml").is_file():
            return folder
    raise FileNotFoundError(f"the project's studies are missing: no package '{PACKAGE}' and no checkout's studies/")


#: The paper's studies (``table8.yaml`` ...).
STUDIES_DIR = packaged_studies()
#: The shared profiles (``--profile smoke``).
PROFILES_DIR = STUDIES_DIR / "profiles"
#: The config groups Hydra composes every trial from (``config.yaml``, ``block/``, ``data/`` ...).
CONF_DIR = STUDIES_DIR / "conf"


def study_folders(cwd: Path | None = None) -> list[Path]:
    """Where a study named without a path is looked for, in order: the working directory, its ``studies/``, then
    the project's studies."""
    here = Path.cwd() if cwd is None else cwd
    return list(dict.fromkeys([here, here / "studies", STUDIES_DIR]))  # once each (in a checkout's root)
