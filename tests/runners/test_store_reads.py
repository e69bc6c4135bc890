"""Reads of a sqlite store kept until it changes (``study.store_version``, ``runners.store_reads``): a study with
nothing to train, its dry run and its table import no MLflow, and no kept read outlives a write to the store."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

import ean
from ean.files_write import write_text
from runners.journal import Journal
from runners.plan import build_plan
from runners.run import main
from runners.session import StudySession
from runners.store_reads import StoreReads, states_question
from runners.tracking import StudyTracker
from study import mlflow_schema as S
from study.spec import Row, load_spec, spec_hash
from study.store_version import store_version
from tests.runners.conftest import REPO, cli_args, tiny_spec, write_yaml

BASE = {"id": "base", "label": "Base", "overrides": ["block=none", "regions=none"]}
EAB = {"id": "eab", "label": "+EAB", "overrides": ["block=eab", "regions=none"]}


def test_every_write_to_the_store_changes_its_version_and_reads_do_not(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s")
    versions = [store_version(uri)]
    client.get_experiment(experiment)
    client.search_runs([experiment])
    assert store_version(uri) == versions[0]
    run = client.create_run(experiment).info.run_id
    writes = (
        lambda: client.log_metric(run, "top1", 1.0),
        lambda: client.log_metric(run, "top1", 1.0),  # the same value again: still a write
        lambda: client.set_tag(run, "t", "v"),
        lambda: client.set_terminated(run, "FINISHED"),
        lambda: client.set_experiment_tag(experiment, "k", "v"),
        lambda: client.delete_run(run),
    )
    versions.append(store_version(uri))
    for write in writes:
        write()
        versions.append(store_version(uri))
    assert None not in versions and len(set(versions)) == len(versions), versions


def test_a_store_that_cannot_tell_its_writes_has_no_version(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert store_version("http://127.0.0.1:5000") is None and store_version(uri) is None  # no file yet
    MlflowClient(uri).create_experiment("s")
    assert store_version(uri) is not None
    journal = tmp_path / "mlflow.db-journal"  # a write in progress, or cut short
    journal.write_bytes(b"")
    assert store_version(uri) is None
    journal.unlink()
    with sqlite3.connect(db) as con:  # WAL mode: writes go to the -wal file, the header's counter stays
        con.execute("PRAGMA journal_mode=WAL")
    assert store_version(uri) is None
    text = tmp_path / "notes.db"
    text.write_text("not a database " * 20)
    assert store_version(f"sqlite:///{text}") is None


@pytest.fixture
def finished(study_dir):
    """A tiny study of two rows whose trials have FINISHED runs (top-1 50 and 40), made without training."""
    spec_path = write_yaml(study_dir / "tiny.yaml", tiny_spec([BASE, EAB]))
    spec = load_spec(spec_path)
    trials = build_plan(spec, [], [], [0], study_dir)
    uri = f"sqlite:///{study_dir / 'mlflow.db'}"
    tracker = StudyTracker(uri, spec.name, spec_hash(spec))
    runs = {}
    for trial, top1 in zip(trials, (50.0, 40.0), strict=True):
        tags = {S.TAG_DATASET: trial.config["data"]["dataset"], S.TAG_PROTOCOL: trial.recipe["protocol"],
                S.TAG_CODE_VERSION: ean.__version__}  # fmt: skip
        runs[trial.row.id] = run_id = tracker.open_trial(trial, tags, rerun=False)
        tracker.finish_trial(run_id, {"top1": top1}, None, str(study_dir / "w" / trial.row.id))
    return spec_path, uri, runs


def no_mlflow(monkeypatch) -> None:
    """Any MLflow read of the study's states or runs fails: what passes used the kept reads."""

    def asked(*args, **kwargs):
        raise AssertionError("MLflow was asked")

    monkeypatch.setattr(StudyTracker, "__init__", asked)
    monkeypatch.setattr("reports.make.read_runs", asked)


def plan_states(out: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[2] for line in out.splitlines() if line.startswith("tiny/")}


def test_a_dry_run_uses_the_kept_states_until_the_store_changes(finished, study_dir, capsys, monkeypatch):
    spec, uri, runs = finished
    args = cli_args(study_dir, spec, "--dry-run")
    assert main(args) == 0
    assert plan_states(capsys.readouterr().out) == {"tiny/base/seed0": "cached", "tiny/eab/seed0": "cached"}
    with monkeypatch.context() as patch:
        no_mlflow(patch)
        assert main(args) == 0
    assert plan_states(capsys.readouterr().out) == {"tiny/base/seed0": "cached", "tiny/eab/seed0": "cached"}
    MlflowClient(uri).delete_run(runs["base"])
    assert main(args) == 0
    assert plan_states(capsys.readouterr().out) == {"tiny/base/seed0": "new", "tiny/eab/seed0": "cached"}


def table_line(out: str, label: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"| {label} "))


def test_a_cached_rerun_uses_the_kept_reads_and_shows_a_number_logged_since(finished, study_dir, capsys, monkeypatch):
    spec, uri, runs = finished
    args = cli_args(study_dir, spec)
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "all 2 trials already FINISHED" in first and "50.0" in table_line(first, "Base")
    with monkeypatch.context() as patch:
        no_mlflow(patch)
        assert main(args) == 0
    kept = capsys.readouterr().out
    assert "all 2 trials already FINISHED" in kept and table_line(kept, "Base") == table_line(first, "Base")
    assert table_line(kept, "+EAB") == table_line(first, "+EAB")
    MlflowClient(uri).log_metric(runs["base"], "top1", 60.0)
    assert main(args) == 0
    assert "60.0" in table_line(capsys.readouterr().out, "Base")


def session_of(spec_path, uri: str, study_dir) -> StudySession:
    spec = load_spec(spec_path)
    trials = build_plan(spec, [], [], [0], study_dir)
    args = argparse.Namespace(storage=str(study_dir / "runs"), rerun=False, address=None)
    return StudySession(spec, trials, args, uri, [str(spec_path)])


def test_kept_states_are_not_used_while_a_run_is_running_or_a_write_waits_in_the_journal(finished, study_dir, capsys):
    spec, uri, runs = finished
    assert main(cli_args(study_dir, spec, "--dry-run")) == 0  # the states kept
    session = session_of(spec, uri, study_dir)
    assert session.kept_all_cached()
    Journal(session.journal_path).append({"op": "kill", "key": "k", "reason": "stopped"})
    assert not session_of(spec, uri, study_dir).kept_all_cached()
    os.remove(session.journal_path)

    session = session_of(spec, uri, study_dir)
    reads = StoreReads(uri)
    question = states_question(session.spec.name, spec_hash(session.spec), session.trials)
    kept = reads.get(question)
    reads.put(question, reads.version(), {**kept, "running": True})  # as read while a driver ran the study
    assert not session.kept_all_cached()
    reads.put(question, reads.version(), kept)
    assert session_of(spec, uri, study_dir).kept_all_cached()


def test_a_study_with_nothing_to_train_imports_no_mlflow_once_its_reads_are_kept(finished, study_dir, tmp_path):
    spec, uri, runs = finished
    script = (
        "import sys, runners.run as r; code = r.main(sys.argv[1:]); "
        "print('HEAVY', *sorted({m.split('.')[0] for m in sys.modules} & {'hydra', 'mlflow', 'ray', 'torch'}), "
        "file=sys.stderr); sys.exit(code)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*extra: str) -> tuple[str, str]:
        done = subprocess.run([sys.executable, "-c", script, *cli_args(study_dir, spec, *extra)], cwd=study_dir,
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr.splitlines()[-1]

    first, heavy = run()
    assert "mlflow" in heavy.split()  # read from MLflow, then kept
    again, heavy = run()
    assert heavy == "HEAVY", "a study with nothing to train imported " + heavy
    assert [ln for ln in again.splitlines() if "generated" not in ln] == [
        ln for ln in first.splitlines() if "generated" not in ln
    ]
    dry, heavy = run("--dry-run")
    assert "mlflow" not in heavy.split() and "cached" in dry  # torch: it counts Params and FLOPs, once
    dry, heavy = run("--dry-run")
    assert heavy == "HEAVY" and "cached" in dry


@pytest.mark.parametrize("mode", ["--dry-run", "--no-report"])
def test_states_read_while_another_process_wrote_are_not_used_later(finished, study_dir, monkeypatch, mode):
    """The version is taken before the read: a write landing during the read leaves the read unused (a dry run's
    read, and a study's with nothing to train)."""
    spec, uri, runs = finished
    real_mark = StudyTracker.mark_cached
    marked = []

    def written_meanwhile(self, trials, rerun, rerun_since=None):
        real_mark(self, trials, rerun, rerun_since)
        marked.append(1)
        if len(marked) == 1:
            MlflowClient(uri).set_tag(runs["eab"], "note", "written while the states were read")

    monkeypatch.setattr(StudyTracker, "mark_cached", written_meanwhile)
    args = cli_args(study_dir, spec, mode)
    assert main(args) == 0 and main(args) == 0
    assert len(marked) == 2, "the states read while the store was written were used"
    assert main(args) == 0 and len(marked) == 2  # read after the write: kept


def test_runs_read_for_a_table_while_another_process_wrote_are_not_used_later(finished, study_dir, monkeypatch):
    from reports import make

    spec, uri, runs = finished
    real_read = make.read_runs
    reads = []

    def written_meanwhile(study, tracking_uri=None):
        read = real_read(study, tracking_uri)
        reads.append(1)
        if len(reads) == 1:
            MlflowClient(uri).log_metric(runs["base"], "top1", 70.0)
        return read

    monkeypatch.setattr(make, "read_runs", written_meanwhile)
    args = cli_args(study_dir, spec)
    assert main(args) == 0 and main(args) == 0
    assert len(reads) == 2, "the runs read while the store was written were used"


def test_a_write_that_moves_neither_size_nor_mtime_and_a_file_copied_over_the_store_change_its_version(tmp_path):
    """The counter tells a write within the file system's timestamp granularity; the file's mtime a copy over it
    whose counter is the same."""
    uri, other = f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    for u in (uri, other):  # two stores written alike: equal counters
        MlflowClient(u).create_experiment("s")
    path = tmp_path / "mlflow.db"
    before = store_version(uri)
    shutil.copyfile(tmp_path / "other.db", path)  # the same file (inode), another store's contents
    assert store_version(uri) != before
    before = store_version(uri)
    stat = path.stat()
    MlflowClient(uri).set_experiment_tag("1", "k", "v")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as if written in the same tick
    assert path.stat().st_size == stat.st_size and store_version(uri) != before


def test_a_store_named_by_a_symlink_is_judged_by_the_journal_beside_its_file(tmp_path):
    (tmp_path / "data").mkdir()
    MlflowClient(f"sqlite:///{tmp_path / 'data' / 'real.db'}").create_experiment("s")
    (tmp_path / "mlflow.db").symlink_to(tmp_path / "data" / "real.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert store_version(uri) is not None
    (tmp_path / "data" / "real.db-journal").write_bytes(b"")  # where SQLite writes it: beside the file
    assert store_version(uri) is None


def test_an_answer_read_while_the_store_was_written_is_not_kept_even_if_the_store_comes_back(
    finished, study_dir, capsys, monkeypatch
):
    """A run restored during the read: what the read found is of the store after the write. A backup of the store
    from before it, copied back with its mtime (``cp -p``), has the version taken before the read again: nothing
    was kept under it, so the trial restored in between is not called cached."""
    spec, uri, runs = finished
    client = MlflowClient(uri)
    client.delete_run(runs["eab"])
    shutil.copy2(study_dir / "mlflow.db", study_dir / "backup.db")
    real_runs = StudyTracker.trial_runs

    def restored_meanwhile(self):
        if client.get_run(runs["eab"]).info.lifecycle_stage == "deleted":
            client.restore_run(runs["eab"])
        return real_runs(self)

    monkeypatch.setattr(StudyTracker, "trial_runs", restored_meanwhile)
    args = cli_args(study_dir, spec, "--dry-run")
    assert main(args) == 0
    assert plan_states(capsys.readouterr().out)["tiny/eab/seed0"] == "cached"
    monkeypatch.undo()
    shutil.copy2(study_dir / "backup.db", study_dir / "mlflow.db")  # eab's run deleted again, the old version
    assert main(args) == 0
    assert plan_states(capsys.readouterr().out)["tiny/eab/seed0"] == "new"


def test_a_running_run_a_dry_run_saw_is_reconciled_by_the_next_run(finished, study_dir, capsys):
    spec, uri, runs = finished
    client = MlflowClient(uri)
    orphan = client.create_run(client.get_experiment_by_name("tiny").experiment_id).info.run_id  # a dead driver's
    assert main(cli_args(study_dir, spec, "--dry-run")) == 0
    assert main(cli_args(study_dir, spec, "--no-report")) == 0
    assert "reconciled 1 run(s)" in capsys.readouterr().out and client.get_run(orphan).info.status == "KILLED"


def test_a_new_study_of_reference_rows_only_is_made_after_its_dry_run(finished, study_dir, capsys):
    """No experiment yet: the dry run's answer (nothing to read) does not stand for the run, which creates it."""
    spec, uri, runs = finished
    data = {**tiny_spec([]), "name": "zero"}
    data["rows"] = [{"id": "ref", "label": "Ref", "reference": {"top1": 41.6, "source": "the paper"}}]
    zero = write_yaml(study_dir / "zero.yaml", data)
    assert main(cli_args(study_dir, zero, "--dry-run")) == 0
    assert main(cli_args(study_dir, zero)) == 0
    assert "41.6" in capsys.readouterr().out and MlflowClient(uri).get_experiment_by_name("zero") is not None


def test_the_kept_states_of_other_rows_and_of_other_reading_code_are_not_used(finished, study_dir, capsys, monkeypatch):
    spec, uri, runs = finished
    MlflowClient(uri).delete_run(runs["eab"])
    assert main(cli_args(study_dir, spec, "--dry-run", "--rows", "base")) == 0
    assert plan_states(capsys.readouterr().out) == {"tiny/base/seed0": "cached"}
    assert main(cli_args(study_dir, spec, "--dry-run", "--rows", "eab")) == 0
    assert plan_states(capsys.readouterr().out) == {"tiny/eab/seed0": "new"}
    session = session_of(spec, uri, study_dir)
    question = states_question(session.spec.name, spec_hash(session.spec), session.trials)
    answer = {"states": [["cached", "r", None, 0]] * 2, "other_code": [], "running": False, "experiment_id": "1"}
    StoreReads(uri).put(question, store_version(uri), {**answer, "complete": True})
    assert StoreReads(uri).get(question) is not None
    monkeypatch.setattr("runners.store_reads.reading_code", lambda: ["edited code"])
    assert StoreReads(uri).get(question) is None


def test_a_rerun_and_a_study_with_ensembles_do_not_use_kept_states(finished, study_dir):
    spec, uri, runs = finished
    assert main(cli_args(study_dir, spec, "--dry-run")) == 0  # the states kept
    session = session_of(spec, uri, study_dir)
    assert session.kept_all_cached()
    session = session_of(spec, uri, study_dir)
    session.args.rerun = True
    assert not session.kept_all_cached()
    session = session_of(spec, uri, study_dir)
    ensemble = Row(id="en", label="En", ensemble=("base", "eab"))
    session.spec = dataclasses.replace(session.spec, rows=(*session.spec.rows, ensemble))
    assert not session.kept_all_cached()


def test_a_trial_computed_by_other_code_is_named_from_the_kept_states_too(finished, study_dir, capsys, monkeypatch):
    from runners import code_digest as digests

    spec, uri, runs = finished
    MlflowClient(uri).set_tag(runs["eab"], S.TAG_CODE_DIGEST, "sha256:00000000000000aa")
    then = {**digests.manifest_of(digests.code_digest()), "ean/trial.py": "0" * 16}  # that code, as kept here
    write_text(digests._manifest_path("sha256:00000000000000aa"), json.dumps(then))
    args = cli_args(study_dir, spec, "--no-report")
    for _ in range(2):  # MLflow asked, then the kept states
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "tiny/eab/seed0" in err and "since them, changed: ean/trial.py)" in err
    with monkeypatch.context() as patch:
        no_mlflow(patch)
        assert main(cli_args(study_dir, spec, "--dry-run")) == 0
    err = capsys.readouterr().err
    assert "computed by other sources" in err and "since them, changed: ean/trial.py)" in err


def test_an_experiment_a_dry_run_found_untagged_is_tagged_by_the_next_run(finished, study_dir):
    """An experiment made by other code (or cut short between its creation and its tag): the runner tags it."""
    spec, uri, runs = finished
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    client.delete_experiment_tag(experiment, S.EXPERIMENT_KIND_TAG)
    assert main(cli_args(study_dir, spec, "--dry-run")) == 0
    assert main(cli_args(study_dir, spec, "--no-report")) == 0
    assert client.get_experiment(experiment).tags.get(S.EXPERIMENT_KIND_TAG) == S.EXPERIMENT_KIND


def test_an_answer_stands_for_a_run_only_with_its_experiment_complete_nothing_running_all_finished():
    from runners.store_reads import nothing_to_do

    answer = {"states": [["cached", "r1", None, 0]], "other_code": [], "running": False, "experiment_id": "1",
              "complete": True}  # fmt: skip
    assert nothing_to_do(answer) and nothing_to_do({**answer, "states": []})  # a study of reference rows only
    for change in ({"experiment_id": ""}, {"complete": False}, {"running": True},
                   {"states": [["cached", "r1", None, 0], ["reused", "r2", "other/base/seed0", 0]]}):  # fmt: skip
        assert not nothing_to_do({**answer, **change}), change
    assert not nothing_to_do(None)
