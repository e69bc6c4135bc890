"""MLflow by its conventions, against a real sqlite store (no Ray): runs born with MLflow's system tags, a trial's
data as run inputs (the fingerprint as digest, each logged once), and the parent run carrying the spec, the plan
and the report."""

from __future__ import annotations

import argparse
import errno
import getpass
import json
import subprocess
from pathlib import Path

import pytest
from mlflow.entities import SourceType
from mlflow.tracking import MlflowClient
from mlflow.utils import mlflow_tags
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

from runners.plan import Trial, TrialState
from runners.tracking import StudyTracker, run_note
from study import mlflow_schema as S
from study.spec import Row, load_spec
from tests.runners.conftest import REPO, tiny_spec, write_yaml

FINGERPRINT = "sha256:0123456789abcdef"


@pytest.fixture
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def a_trial(tmp_path, key: str = "k0") -> Trial:
    config = {"trainer": {"epochs": 1}, "data": {"dataset": "synthetic", "root": str(tmp_path / "data")}}
    return Trial(
        study="tiny", row=Row(id="base", label="Base"), seed=0, config=config, key=key, data_fingerprint=FINGERPRINT
    )


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()


def test_the_schema_spells_mlflows_own_names():
    """``study`` does not import mlflow (tests/test_layers.py): its names of MLflow's tags are MLflow's."""
    assert S.TAG_PARENT_RUN_ID == mlflow_tags.MLFLOW_PARENT_RUN_ID
    assert S.MLFLOW_GIT_COMMIT == mlflow_tags.MLFLOW_GIT_COMMIT
    assert S.MLFLOW_SOURCE_NAME == mlflow_tags.MLFLOW_SOURCE_NAME
    assert S.MLFLOW_SOURCE_TYPE == mlflow_tags.MLFLOW_SOURCE_TYPE
    assert S.MLFLOW_USER == mlflow_tags.MLFLOW_USER
    assert S.MLFLOW_RUN_NOTE == mlflow_tags.MLFLOW_RUN_NOTE
    assert S.MLFLOW_DATASET_CONTEXT == mlflow_tags.MLFLOW_DATASET_CONTEXT
    assert SourceType.to_string(SourceType.LOCAL) == S.SOURCE_TYPE_LOCAL
    assert S.MAX_TAG_VALUE == MAX_TAG_VAL_LENGTH


class DriverDied(Exception):
    pass


def test_runs_are_born_with_mlflows_system_tags(store, tmp_path, monkeypatch):
    """A trial run and the parent run carry git commit, source name and type, and user from their create_run:
    a driver killed right after it leaves them on the run."""
    tracker = StudyTracker(store, "tiny", "hash")

    def no_more_writes(*args, **kwargs):
        raise DriverDied("the driver died here")

    for write in ("set_tag", "log_batch", "log_artifact", "log_text", "log_inputs"):
        monkeypatch.setattr(tracker.client, write, no_more_writes)
    with pytest.raises(DriverDied):
        tracker.start_parent(None, ["python -m runners.run", "tiny.yaml"], "A tiny study", {S.ARTIFACT_PLAN: "[]"})
    with pytest.raises(DriverDied):
        tracker.open_trial(a_trial(tmp_path), {S.TAG_DATASET: "synthetic"}, rerun=False)
    expected = {
        S.MLFLOW_GIT_COMMIT: head_commit(),
        S.MLFLOW_SOURCE_NAME: "python -m runners.run",
        S.MLFLOW_SOURCE_TYPE: "LOCAL",
        S.MLFLOW_USER: getpass.getuser(),
    }
    runs = MlflowClient(store).search_runs([tracker.experiment_id])
    assert sorted(r.data.tags[S.TAG_KIND] for r in runs) == [S.KIND_STUDY, S.KIND_TRIAL]
    for run in runs:
        assert {tag: run.data.tags.get(tag) for tag in S.SYSTEM_TAGS} == expected, run.data.tags[S.TAG_KIND]
    (parent,) = (r for r in runs if r.data.tags[S.TAG_KIND] == S.KIND_STUDY)
    assert parent.data.tags[S.MLFLOW_RUN_NOTE] == "A tiny study"


def test_a_journaled_drivers_system_tags_win_on_replay(store, tmp_path):
    """The journal keeps the tags of the driver that opened a run: a later driver replaying it does not
    claim the run as its own."""
    tracker = StudyTracker(store, "tiny", "hash")
    theirs = {S.MLFLOW_GIT_COMMIT: "f" * 40, S.MLFLOW_USER: "someone"}
    run_id = tracker.open_trial(a_trial(tmp_path), theirs, rerun=False)
    tags = MlflowClient(store).get_run(run_id).data.tags
    assert (tags[S.MLFLOW_GIT_COMMIT], tags[S.MLFLOW_USER]) == ("f" * 40, "someone")
    assert tags[S.MLFLOW_SOURCE_TYPE] == "LOCAL"


def inputs_of(store: str, run_id: str) -> dict[str, tuple[str, str, str]]:
    """The run's dataset inputs: name -> (digest, context, source)."""
    found = MlflowClient(store).get_run(run_id).inputs.dataset_inputs
    out = {}
    for i in found:
        context = {t.key: t.value for t in i.tags}.get(S.MLFLOW_DATASET_CONTEXT)
        assert i.dataset.name not in out, f"{i.dataset.name} logged twice"
        assert i.dataset.source_type == "local"
        out[i.dataset.name] = (i.dataset.digest, context, json.loads(i.dataset.source)["uri"])
    return out


def test_the_data_are_run_inputs_with_the_fingerprint_logged_once(store, tmp_path, monkeypatch):
    """A trial run's inputs: each split it reads, the data fingerprint as digest, the data root as source;
    a journal entry applied again and a reopened run log nothing more."""
    from runners.journal import Journal, open_entry, replay

    tracker = StudyTracker(store, "tiny", "hash")
    journal = Journal(tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl")
    journal.append(open_entry(a_trial(tmp_path), {S.TAG_DATASET: "synthetic"}, rerun=False))
    entries = journal.path.read_text()
    assert replay(tracker, journal, ("train_loss",)) == 1
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    root = str(tmp_path / "data")
    expected = {
        "synthetic/train": (FINGERPRINT, S.CONTEXT_TRAINING, root),
        "synthetic/val": (FINGERPRINT, S.CONTEXT_VALIDATION, root),
    }
    assert inputs_of(store, run.info.run_id) == expected

    again = StudyTracker(store, "tiny", "hash")
    calls = []
    log_inputs = again.client.log_inputs
    monkeypatch.setattr(again.client, "log_inputs", lambda *a, **k: (calls.append(a), log_inputs(*a, **k)))
    journal.path.write_text(entries)  # as if the driver died before recording that it applied it
    assert replay(again, journal, ("train_loss",)) == 1
    trial = a_trial(tmp_path)
    trial.state, trial.run_id = TrialState.RESUME, run.info.run_id
    again.open_trial(trial, {S.TAG_DATASET: "synthetic"}, rerun=False)  # the trial resumes
    assert calls == [], "the run already had its inputs"
    assert len(MlflowClient(store).search_runs([tracker.experiment_id])) == 1
    assert inputs_of(store, run.info.run_id) == expected


def test_a_run_that_lost_its_inputs_gets_them_on_replay(store, tmp_path, monkeypatch):
    """A driver that died between creating the run and logging its inputs: the replay of its journal entry
    finds the run and logs them."""
    from runners.journal import Journal, open_entry, replay

    tracker = StudyTracker(store, "tiny", "hash")
    journal = Journal(tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl")
    journal.append(open_entry(a_trial(tmp_path), {S.TAG_EVALUATES: "k9"}, rerun=False))
    entries = journal.path.read_text()
    monkeypatch.setattr(tracker.client, "log_inputs", lambda *a, **k: (_ for _ in ()).throw(DriverDied()))
    replay(tracker, journal, ("train_loss",))  # the write failed (not transient): logged and dropped
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    assert inputs_of(store, run.info.run_id) == {}
    journal.path.write_text(entries)
    replay(StudyTracker(store, "tiny", "hash"), journal, ("train_loss",))
    # an evaluation row reads the validation split only
    assert inputs_of(store, run.info.run_id) == {
        "synthetic/val": (FINGERPRINT, S.CONTEXT_EVALUATION, str(tmp_path / "data"))
    }


def test_an_evaluation_reads_the_validation_split_only(store, tmp_path):
    tracker = StudyTracker(store, "tiny", "hash")
    run_id = tracker.open_trial(a_trial(tmp_path, key="k1"), {S.TAG_EVALUATES: "k0"}, rerun=False)
    assert inputs_of(store, run_id) == {"synthetic/val": (FINGERPRINT, S.CONTEXT_EVALUATION, str(tmp_path / "data"))}


def session_for(tmp_path, store: str, trials: list[Trial]):
    from runners.session import StudySession

    spec_path = write_yaml(tmp_path / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base"}]))
    args = argparse.Namespace(profile=None, rerun=False, storage=str(tmp_path / "runs"), address=None)
    session = StudySession(load_spec(spec_path), trials, args, store, [str(spec_path)], spec_path=spec_path)
    return session, spec_path


@pytest.mark.parametrize("linked_figures", [False, True], ids=["figures", "figures-a-link"])
def test_the_parent_carries_the_spec_the_plan_and_the_report(store, tmp_path, monkeypatch, linked_figures):
    """The parent run is born with the spec file and the plan; after the study, the report's files go to it
    (ended by then) and its description is the Markdown table. A ``figures/`` that links elsewhere (the paper's
    folder) is followed."""
    from runners.run import report

    monkeypatch.chdir(tmp_path)  # the report's files go to outputs/reports/tiny
    if linked_figures:
        (tmp_path / "outputs" / "reports" / "tiny").mkdir(parents=True)
        (tmp_path / "paper").mkdir()
        (tmp_path / "outputs" / "reports" / "tiny" / "figures").symlink_to(tmp_path / "paper")
    tracker = StudyTracker(store, "tiny", "hash")
    session, spec_path = session_for(tmp_path, store, [a_trial(tmp_path)])
    session.tracker = tracker
    session.prepare_runs(todo=[])
    parent = session.parent_id
    client = MlflowClient(store)
    (tmp_path / "dl").mkdir()
    plan = json.loads(Path(client.download_artifacts(parent, S.ARTIFACT_PLAN, str(tmp_path / "dl"))).read_text())
    assert [(e["row"], e["seed"], e["trial_key"], e["state"]) for e in plan] == [("base", 0, "k0", "new")]
    assert plan[0]["config"]["data"]["dataset"] == "synthetic"
    spec_copy = client.download_artifacts(parent, S.ARTIFACT_SPEC, str(tmp_path / "dl"))
    assert Path(spec_copy).read_text() == spec_path.read_text()

    tags = {S.TAG_DATASET: "synthetic", S.TAG_PROTOCOL: "1x1", S.TAG_CODE_VERSION: "0.3.0"}
    run_id = tracker.open_trial(a_trial(tmp_path), tags, rerun=False)
    tracker.finish_trial(run_id, {"top1": 40.0, "top5": 80.0}, None, str(tmp_path))
    tracker.end_parent(S.STATUS_FINISHED)
    report(spec_path, store, [0], [a_trial(tmp_path)], tracker)

    logged = {a.path for a in client.list_artifacts(parent, S.ARTIFACT_REPORT)}
    for name in ("tiny.md", "tiny.tex", "tiny_standalone.tex", "tiny.csv", "tiny_runs.csv"):
        assert f"{S.ARTIFACT_REPORT}/{name}" in logged
    figures = {a.path for a in client.list_artifacts(parent, f"{S.ARTIFACT_REPORT}/figures")}
    assert f"{S.ARTIFACT_REPORT}/figures/tiny_top1_vs_gflops.png" in figures
    assert (tmp_path / "paper" / "tiny_top1_vs_gflops.png").is_file() == linked_figures
    md = (tmp_path / "outputs" / "reports" / "tiny" / "tiny.md").read_text()
    run = client.get_run(parent)
    note = run.data.tags[S.MLFLOW_RUN_NOTE]
    assert note == run_note(md, "report/tiny.md") and "| Base" in note and "Provenance: study tiny" in note
    assert run.info.status == S.STATUS_FINISHED


def test_the_drivers_table_shows_the_runs_of_the_keys_it_planned(store, tmp_path, monkeypatch):
    """An earlier invocation trained the row with a command-line override (another trial key) after this
    configuration's run: this invocation's table shows its own key's run, and names the other as left out."""
    from runners.run import report

    monkeypatch.chdir(tmp_path)
    tracker = StudyTracker(store, "tiny", "hash")
    tags = {S.TAG_DATASET: "synthetic", S.TAG_PROTOCOL: "1x1", S.TAG_CODE_VERSION: "0.3.0"}
    for key, top1 in (("k_default", 41.25), ("k_lr", 77.75)):  # the override's run is the newer one
        run_id = tracker.open_trial(a_trial(tmp_path, key=key), tags, rerun=False)
        tracker.finish_trial(run_id, {"top1": top1, "top5": 90.0}, None, str(tmp_path))
    _, spec_path = session_for(tmp_path, store, [])
    report(spec_path, store, [0], [a_trial(tmp_path, key="k_default")])
    md = (tmp_path / "outputs" / "reports" / "tiny" / "tiny.md").read_text()
    assert "41.2" in md and "77.8" not in md
    assert "1 run of a configuration this invocation did not plan (another trial key): Base seed 0" in md
    report(spec_path, store, [0], [a_trial(tmp_path, key="k_lr")])
    assert "77.8" in (tmp_path / "outputs" / "reports" / "tiny" / "tiny.md").read_text()


def test_cell_keys_name_the_ensemble_runs_the_driver_logs(store, tmp_path):
    """The key ``cell_keys`` plans for an ensemble cell is the key ``run_ensembles`` logs its run under."""
    from runners.ensembles import cell_keys, ensemble_key

    spec = load_spec(write_yaml(tmp_path / "en.yaml", tiny_spec([
        {"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "en", "label": "En", "ensemble": ["a", "b"]},
    ])))  # fmt: skip
    planned = {("a", "", 0): "kz", ("b", "", 0): "ka", ("a", "", 1): "kz1"}  # seed 1 lacks b
    assert cell_keys(spec, planned) == {**planned, ("en", "", 0): ensemble_key(["kz", "ka"])}  # in the row's order


def test_a_study_with_every_trial_cached_opens_no_parent(store, tmp_path):
    """Nothing trained, nothing reused: no parent run (a re-run that only prints the table stays cheap and
    leaves no empty parents); the report has no parent to go to."""
    tracker = StudyTracker(store, "tiny", "hash")
    trial = a_trial(tmp_path)
    trial.state, trial.run_id = TrialState.CACHED, "cached-run"
    session, _ = session_for(tmp_path, store, [trial])
    session.tracker = tracker
    assert session.finish_cached() == 0
    assert session.parent_id is None
    assert MlflowClient(store).search_runs([tracker.experiment_id], S.study_filter("tiny")) == []


def test_the_description_is_the_table_with_plain_footnotes_cut_to_fit():
    """MLflow's description renderer shows footnote markers as they are: the note makes them plain text; a
    table longer than a tag holds is cut, naming the artifact with all of it."""
    table = "**T.** Param in millions.[^provenance]\n\n| a |\n|:-:|\n| 1 |\n\n[^provenance]: Provenance: study t."
    assert run_note(table, "x") == "**T.** Param in millions.\n\n| a |\n|:-:|\n| 1 |\n\nProvenance: study t."
    note = run_note("| row |\n" * 2000, "report/tiny.md")
    assert len(note) <= S.MAX_TAG_VALUE and note.endswith("the whole text is the artifact `report/tiny.md`)")


def test_a_local_store_keeps_its_runs_artifacts_next_to_it(tmp_path, monkeypatch):
    """Whatever the driver's working directory: the artifacts lie in ``mlruns/STUDY`` beside the sqlite file."""
    (tmp_path / "store").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    run_id = StudyTracker(store, "tiny", "hash").open_trial(a_trial(tmp_path), {}, rerun=False)
    MlflowClient(store).log_text(run_id, "hello", "note.txt")
    assert (tmp_path / "store" / "mlruns" / "tiny" / run_id / "artifacts" / "note.txt").read_text() == "hello"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_the_default_store_keeps_them_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = StudyTracker("sqlite:///mlflow.db", "tiny", "hash")
    location = MlflowClient("sqlite:///mlflow.db").get_experiment(tracker.experiment_id).artifact_location
    assert location == (tmp_path / "mlruns" / "tiny").as_uri()


def test_an_existing_experiment_keeps_its_artifact_location(store, tmp_path):
    exp_id = MlflowClient(store).create_experiment("tiny", artifact_location=(tmp_path / "own").as_uri())
    assert StudyTracker(store, "tiny", "hash").experiment_id == exp_id
    assert MlflowClient(store).get_experiment(exp_id).artifact_location == (tmp_path / "own").as_uri()


def test_a_tracking_server_decides_where_artifacts_go():
    from runners.tracking import artifact_location

    assert artifact_location("http://10.0.0.1:5000", "tiny") is None
    assert artifact_location("sqlite:////shared/ean.db?timeout=60", "tiny") == "file:///shared/mlruns/tiny"


def test_a_cached_trial_computed_by_other_sources_is_named(store, tmp_path, monkeypatch):
    """A trial key holds ``ean.__version__``, not the sources: a cached result of changed code is kept, and
    named, so that its user can run it again."""
    from runners import code_digest

    tracker = StudyTracker(store, "tiny", "hash")
    digest = code_digest.code_digest()
    trials = [a_trial(tmp_path, "k0"), a_trial(tmp_path, "k1")]
    trials[1].row = Row(id="eab", label="+EAB")
    for trial, computed_by in zip(trials, (digest, "sha256:00000000000000aa"), strict=True):
        run_id = tracker.open_trial(trial, {S.TAG_CODE_DIGEST: computed_by}, rerun=False)
        tracker.client.set_terminated(run_id, S.STATUS_FINISHED)
    tracker.mark_cached(trials, rerun=False)
    assert [t.state for t in trials] == [TrialState.CACHED, TrialState.CACHED]
    note = tracker.other_code_note()
    assert note and "1 cached or reused trial(s)" in note and "tiny/eab/seed0" in note and "tiny/base" not in note
    monkeypatch.setattr(code_digest, "code_digest", lambda: "sha256:00000000000000aa")
    tracker.mark_cached(trials, rerun=False)
    assert "tiny/base/seed0" in tracker.other_code_note() and "tiny/eab" not in tracker.other_code_note()
    tracker.mark_cached(trials, rerun=True)
    assert tracker.other_code_note() is None  # nothing cached: everything runs again


def _full_disk_error(code: str = "TEMPORARILY_UNAVAILABLE") -> Exception:
    """As MLflow's sqlite store raises it (its codes are the protobuf enum's)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    message = "(sqlite3.OperationalError) database or disk is full"
    return MlflowException(message, error_code=getattr(databricks_pb2, code))


def _read_only() -> Exception:
    """MLflow's sqlite store gives every OperationalError the code TEMPORARILY_UNAVAILABLE, one no retry gets past
    too: the code alone says nothing."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    return MlflowException("(sqlite3.OperationalError) attempt to write a readonly database", TEMPORARILY_UNAVAILABLE)


def _raised_from(cause: BaseException) -> Exception:
    try:
        raise RuntimeError("the artifact could not be copied") from cause
    except RuntimeError as err:
        return err


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (_full_disk_error(), True),
        (_full_disk_error("INTERNAL_ERROR"), True),  # by sqlite's words alone
        (_read_only(), False),
        (_raised_from(OSError(errno.ENOSPC, "No space left on device")), True),  # an artifact copy's cause
        (ConnectionError("refused"), True),
        (ValueError("a metric MLflow refuses"), False),
        (OSError(errno.EACCES, "Permission denied"), False),
    ],
)
def test_a_write_that_failed_on_a_full_disk_is_kept_not_dropped(error, kept):
    """A full disk (the store's or the artifacts') frees up: the write is kept for later, as for a store that does
    not answer; only errors no retry gets past are dropped."""
    from runners.journal import transient

    assert transient(error) is kept


def test_a_finish_the_full_disk_refused_waits_in_the_journal(store, tmp_path, monkeypatch):
    """Replay of a trial's finish while the store's disk is full: it stays pending (the next invocation applies
    it), it is not dropped with the result."""
    from runners.journal import Journal, open_entry, replay

    tracker = StudyTracker(store, "tiny", "hash")
    journal = Journal(tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl")
    trial = a_trial(tmp_path)
    journal.append(open_entry(trial, {}, rerun=False))
    replay(tracker, journal, ("train_loss",))
    journal.append({"op": "finish", "key": trial.key, "final": {"top1": 50.0}, "workdir": str(tmp_path)})
    monkeypatch.setattr(tracker.client, "set_terminated", lambda *a, **k: (_ for _ in ()).throw(_full_disk_error()))
    with pytest.raises(Exception, match="disk is full"):
        replay(tracker, journal, ("train_loss",))
    assert [e["op"] for e in journal.pending()] == ["finish"]
    assert replay(StudyTracker(store, "tiny", "hash"), journal, ("train_loss",)) == 1
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["top1"] == 50.0
