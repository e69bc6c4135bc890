"""A plain (not editable) install of the wheel into a fresh environment works from an empty directory.

The fresh virtual environment has only the project's wheel installed in it; its dependencies (torch, Ray,
MLflow, Hydra ...) come from this test's environment through a ``.pth`` file that lists this environment's
``site-packages`` as plain paths. Only the directories are added: this environment's own ``.pth`` files, among
them an editable install's finder that maps ``runners`` onto the checkout, are not run there, so the checkout
is not importable; the test asserts that every package imports from the fresh environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.packaging import build_wheel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh virtual environment with the project's wheel installed (``--no-deps``)."""
    root = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(root / "build")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    new_python = venv / "bin" / "python"
    site = subprocess.run(
        [str(new_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parents = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(site) / "_dependencies_from_the_test_environment.pth").write_text("\n".join(parents) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(new_python), "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=600)
    return venv / "bin"


def command(bin_dir: Path, cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs a command of the fresh environment in ``cwd``, with nothing of the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def empty(tmp_path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_the_packages_and_the_studies_import_from_the_fresh_environment(installed, empty):
    probe = (
        "import sys; assert not [f for f in sys.meta_path if 'editable' in repr(f).lower()], sys.meta_path; "
        "import ean, reports, runners, study, ean_studies; from study.locations import CONF_DIR; "
        "print(*[m.__file__ for m in (ean, reports, runners, study, ean_studies)], CONF_DIR, sep='\\n')"
    )
    shown = command(installed, empty, str(installed / "python"), "-c", probe)
    assert shown.returncode == 0, shown.stderr  # no editable install's finder: the checkout is not on the path
    site = str(installed.parent / "lib")
    for path in shown.stdout.split():
        assert path.startswith(site) and "site-packages" in path, path


def test_ean_run_plans_table8_by_name_from_an_empty_directory(installed, empty):
    run = command(installed, empty, "ean-run", "table8", "--profile", "smoke", "--dry-run")
    assert run.returncode == 0, run.stderr
    trials = [line.split()[0] for line in run.stdout.splitlines() if line.startswith("table8/")]
    assert len(trials) == 15 and "table8/eab/seed0" in trials
    assert sorted(p.name for p in empty.iterdir()) == []  # a dry run writes nothing here


def test_ean_run_names_the_places_it_searched_for_an_unknown_study(installed, empty):
    run = command(installed, empty, "ean-run", "tabel8", "--dry-run")
    assert run.returncode == 2
    assert f"{empty}: (no studies)" in run.stderr
    assert "ean_studies: demo, table1, table10" in run.stderr


def test_a_users_study_in_the_working_directory_is_found_by_name(installed, empty):
    text = (Path(__file__).resolve().parents[1] / "studies" / "demo.yaml").read_text()
    (empty / "studies").mkdir()
    (empty / "studies" / "mydemo.yaml").write_text(text.replace("name: demo", "name: mydemo", 1))
    run = command(installed, empty, "ean-run", "mydemo", "--dry-run", "--seeds", "0")
    assert run.returncode == 0, run.stderr
    assert "mydemo/" in run.stdout


@pytest.mark.parametrize(
    ("name", "usage"),
    [("ean-profile", "ean-profile"), ("ean-report", "ean-report")],  # each says the name it was started by
)
def test_the_console_commands_answer_help(installed, empty, name, usage):
    shown = command(installed, empty, name, "--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"usage: {usage}")


def test_ean_profile_counts_the_default_model(installed, empty):
    shown = command(installed, empty, "ean-profile")
    assert shown.returncode == 0, shown.stderr
    assert "params 36.24M" in shown.stdout
