"""Helpers of the packaging tests: the console scripts of ``pyproject.toml``, a wheel built from the tracked files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The repository's folder of studies and the package it is installed as.
STUDIES, STUDIES_PACKAGE = "studies", "ean_studies"
#: The folders that are packages of the distribution.
PACKAGES = ("ean", "runners", "reports", "study")


def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of ``pyproject.toml``: command name -> ``module:function``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def tracked_files() -> list[str]:
    """The repository's files git knows of (tracked, or new and not ignored), as POSIX paths."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of the repository")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (REPO / name).is_file()]  # not a file deleted but not yet committed


def build_wheel(out: Path) -> Path:
    """A wheel of the repository built from a copy of its tracked files (as a clean clone would build it)."""
    source = out / "source"
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "-w", str(out / "dist"), str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = (out / "dist").glob("*.whl")
    return wheel


def installed_name(tracked: str) -> str | None:
    """Where a tracked file lies in the installed distribution (None: not part of it)."""
    top, _, rest = tracked.partition("/")
    if top == STUDIES:
        return f"{STUDIES_PACKAGE}/{rest}"
    if top in PACKAGES and tracked.endswith(".py"):
        return tracked
    return None
