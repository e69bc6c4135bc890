"""runners.store_template: a new sqlite store is a copy of an empty store MLflow migrated once, and is then the
same store MLflow would have created (schema, revision, Default experiment); nothing existing is replaced."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runners.store_template import copy_exclusive, create_from_template, sqlite_path, template_path
from runners.tracking import StudyTracker


def schema(db: Path) -> tuple[list[tuple], list[tuple]]:
    """Every table and index with the lines of its SQL as a set (MLflow's migrations write a table's
    constraints in an order that varies from one creation to the next), and the schema revision."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        objects = sorted(
            (kind, name, frozenset(ln.strip(" ,\t") for ln in (sql or "").splitlines())) for kind, name, sql in rows
        )
        return objects, list(conn.execute("SELECT version_num FROM alembic_version"))


def experiments(db: Path) -> list[tuple[str, str, str]]:
    client = MlflowClient(f"sqlite:///{db}")
    return sorted((e.experiment_id, e.name, e.artifact_location) for e in client.search_experiments())


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root (./mlruns) lies here
    return tmp_path


def test_a_new_store_is_the_store_mlflow_would_have_created(folder):
    own = folder / "own.db"
    MlflowClient(f"sqlite:///{own}").search_experiments()  # MLflow creates it: every migration
    first, second = folder / "first.db", folder / "second.db"
    assert create_from_template(f"sqlite:///{first}") and template_path().is_file()
    assert create_from_template(f"sqlite:///{second}")
    assert schema(first) == schema(second) == schema(own)
    expected = [("0", "Default", str(folder / "mlruns" / "0"))]  # as MLflow makes it here, not the template's
    assert experiments(first) == experiments(second) == experiments(own) == expected


def test_a_study_runs_on_a_copied_store(folder):
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracker = StudyTracker(uri, "tiny", "hash")
    assert template_path().is_file(), "the store was made from the template"
    run = tracker.client.create_run(tracker.experiment_id)
    tracker.client.log_metric(run.info.run_id, "top1", 50.0)
    tracker.client.set_terminated(run.info.run_id)
    (found,) = MlflowClient(uri).search_runs([tracker.experiment_id])
    assert found.data.metrics == {"top1": 50.0} and found.info.status == "FINISHED"


def test_an_existing_store_is_never_replaced(folder):
    store = folder / "mlflow.db"
    StudyTracker(f"sqlite:///{store}", "tiny", "hash")
    before = store.read_bytes()
    assert not create_from_template(f"sqlite:///{store}")
    assert store.read_bytes() == before
    other = folder / "other.db"  # a store another process created between the check and the copy
    other.write_bytes(b"theirs")
    copy_exclusive(template_path(), other)
    assert other.read_bytes() == b"theirs"
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == []


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:5000", "sqlite:///missing/folder/mlflow.db", "sqlite:///mlflow.db?timeout=30"]
)
def test_other_uris_are_left_to_mlflow(folder, uri):
    assert not create_from_template(uri)
    assert not (folder / "cache").exists() and not any(p.suffix == ".db" for p in folder.rglob("*"))


def test_a_template_that_cannot_be_made_leaves_the_store_to_mlflow(folder):
    (folder / "cache").write_text("a file where the cache folder should be")
    assert not create_from_template(f"sqlite:///{folder / 'mlflow.db'}")
    assert not (folder / "mlflow.db").exists()
    assert os.listdir(folder) == ["cache"]


def test_the_file_of_a_sqlite_uri():
    assert sqlite_path("sqlite:///runs/mlflow.db") == Path("runs/mlflow.db")
    assert sqlite_path("sqlite:////abs/mlflow.db?timeout=30") == Path("/abs/mlflow.db")
    assert sqlite_path("http://127.0.0.1:5000") is None
