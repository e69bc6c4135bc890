"""Finding a study: a path, else a name looked for in ./, ./studies/, then the project's studies."""

from __future__ import annotations

import pytest

from study.find import find_spec
from study.locations import CONF_DIR, PROFILES_DIR, STUDIES_DIR, study_folders
from study.spec import SpecError


def test_the_project_studies_are_found_with_their_profiles_and_config_groups():
    assert (STUDIES_DIR / "table8.yaml").is_file()
    assert (PROFILES_DIR / "smoke.yaml").is_file()
    assert (CONF_DIR / "config.yaml").is_file() and (CONF_DIR / "block" / "eab.yaml").is_file()


def test_a_name_is_looked_for_in_the_working_directory_then_its_studies_then_the_project(tmp_path):
    assert find_spec("table8", cwd=tmp_path) == STUDIES_DIR / "table8.yaml"
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "table8.yaml").write_text("name: mine\n")
    assert find_spec("table8", cwd=tmp_path) == tmp_path / "studies" / "table8.yaml"
    (tmp_path / "table8.yaml").write_text("name: mine\n")
    assert find_spec("table8", cwd=tmp_path) == tmp_path / "table8.yaml"
    assert find_spec("table8.yaml", cwd=tmp_path) == tmp_path / "table8.yaml"


def test_an_explicit_path_always_wins(tmp_path):
    spec = tmp_path / "elsewhere" / "any_name.yml"
    spec.parent.mkdir()
    spec.write_text("name: x\n")
    assert find_spec(spec, cwd=tmp_path) == spec
    assert find_spec(str(spec), cwd=tmp_path / "nowhere") == spec


def test_the_working_directory_is_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mystudy.yaml").write_text("name: mine\n")
    assert find_spec("mystudy").resolve() == (tmp_path / "mystudy.yaml").resolve()
    assert study_folders()[0].resolve() == tmp_path.resolve()


def test_an_unknown_study_lists_the_places_searched_and_the_studies_found(tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "mine.yaml").write_text("name: mine\n")
    with pytest.raises(SpecError) as err:
        find_spec("tabel8", cwd=tmp_path)
    text = str(err.value)
    assert "no study 'tabel8'" in text
    assert f"{tmp_path}: (no studies)" in text
    assert f"{tmp_path / 'studies'}: mine" in text
    assert f"{STUDIES_DIR}: demo, table1, table10" in text


def test_a_missing_path_with_folders_is_not_looked_up_by_name(tmp_path):
    with pytest.raises(SpecError, match="no study 'sub/table8.yaml'"):
        find_spec("sub/table8.yaml", cwd=tmp_path)


def test_in_the_checkouts_root_its_studies_are_searched_once():
    assert study_folders(STUDIES_DIR.parent) == [STUDIES_DIR.parent, STUDIES_DIR]


def test_code_run_from_another_checkout_uses_that_checkouts_studies(tmp_path):
    """A second checkout run with ``PYTHONPATH`` while the first is the installed one: its own config groups."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    clone = tmp_path / "clone"
    shutil.copytree(repo / "study", clone / "study", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "studies", clone / "studies")
    shutil.copy(repo / "pyproject.toml", clone)  # what makes a folder a checkout
    probe = "from study.locations import CONF_DIR; print(CONF_DIR)"
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(clone)}, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == str(clone / "studies" / "conf")
