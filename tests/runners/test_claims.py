"""Trial keys claimed store-wide (``runners.claims``): two studies that share a trial never both run it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runners.claims import KeyClaims, claim_experiment_name
from runners.lease import LeaseHeld, StudyLease
from runners.plan import build_plan
from runners.run import main
from runners.session import EXIT_OK, EXIT_WAITING
from runners.tracking import StudyTracker
from study import mlflow_schema as S
from study.spec import parse_spec
from tests.runners.conftest import cli_args, tiny_spec, write_yaml

BASE = {"id": "base", "label": "Base", "overrides": ["block=none", "regions=none"]}


def a_study(uri: str, name: str) -> tuple[str, StudyLease]:
    """The experiment of study ``name`` and its lease, held by this process."""
    experiment = StudyTracker(uri, name, "hash").experiment_id
    lease = StudyLease(uri, experiment, name, f"python -m runners.run {name}")
    lease.acquire()
    return experiment, lease


def claimed_by_other(study_dir):
    """Study ``tiny`` of one trial, whose key study ``other`` (this process, its lease held) claims: the store's
    URI, tiny's spec file, the trial, other's claims and lease."""
    uri = f"sqlite:///{study_dir / 'mlflow.db'}"
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([BASE]))
    (trial,) = build_plan(parse_spec(tiny_spec([BASE])), [], [], [0], study_dir)
    experiment, lease = a_study(uri, "other")
    claims = KeyClaims(uri, experiment, "other", lease.owner)
    assert claims.take([trial.key]) == {}
    return uri, spec, trial, claims, lease


def test_a_key_claimed_by_a_live_driver_is_refused_naming_it_until_released(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (exp_a, lease_a), (exp_b, lease_b) = a_study(uri, "table8"), a_study(uri, "table9")
    first = KeyClaims(uri, exp_a, "table8", lease_a.owner)
    second = KeyClaims(uri, exp_b, "table9", lease_b.owner)
    assert first.take(["k1", "k2"]) == {}
    refused = second.take(["k2", "k3"])
    assert list(refused) == ["k2"] and f"study 'table8' (pid {os.getpid()} on {socket.gethostname()})" == refused["k2"]
    first.release()
    assert second.take(["k2"]) == {} and first.take(["k1", "k2", "k3"]).keys() == {"k2", "k3"}
    second.release()
    first.release()
    lease_a.release()
    lease_b.release()


def test_on_a_tracking_server_a_claim_lives_with_its_drivers_lease(tmp_path):
    """The lock experiment ``ean-claim/KEY`` (the path a tracking server takes): refused while its creator holds
    its study's lease; once that driver is dead (its pid gone, its lease not held), discarded and taken."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (exp_a, lease_a), (exp_b, lease_b) = a_study(uri, "table8"), a_study(uri, "table9")
    first = KeyClaims(uri, exp_a, "table8", lease_a.owner)
    second = KeyClaims(uri, exp_b, "table9", lease_b.owner)
    first.store = second.store = None  # as on a tracking server
    assert first.take(["k1"]) == {}
    client = MlflowClient(uri)
    lock = client.get_experiment_by_name(claim_experiment_name("k1"))
    assert lock.tags[S.CLAIM_STUDY] == "table8" and lock.tags[S.CLAIM_EXPERIMENT] == exp_a
    assert second.take(["k1"]) == {"k1": f"study 'table8' (pid {os.getpid()} on {socket.gethostname()})"}
    lease_a.release()  # the first driver dies: its lease is not held, its pid is gone
    client.set_experiment_tag(lock.experiment_id, S.LEASE_PID, str(2**22 + 12345))
    assert second.take(["k1"]) == {}
    assert client.get_experiment_by_name(claim_experiment_name("k1")).tags[S.CLAIM_STUDY] == "table9"
    second.release()
    assert client.get_experiment_by_name(claim_experiment_name("k1")) is None
    lease_b.release()


def test_a_claim_taken_over_while_its_driver_runs_stops_that_driver_at_its_next_heartbeat(tmp_path):
    """On a tracking server: driver X's heartbeats did not reach the server for a while (a partition), so study
    Y's driver judged X dead and took X's claim of k1 over, though X runs on. X's next heartbeat finds it: its
    lease is ``lost`` (its trials stop, nothing more is written), the error names the key and who took it. Its
    own claims still held say nothing."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp_x = StudyTracker(uri, "x", "hash").experiment_id
    exp_y, lease_y = a_study(uri, "y")
    stopped: list = []
    lease_x = StudyLease(uri, exp_x, "x", "python -m runners.run x", heartbeat_s=3600, on_lost=stopped.append)
    lease_x.acquire()
    claims_x = KeyClaims(uri, exp_x, "x", lease_x.owner)
    claims_y = KeyClaims(uri, exp_y, "y", lease_y.owner)
    claims_x.store = claims_y.store = None  # as on a tracking server
    lease_x.watch = claims_x.lost
    assert claims_x.take(["k1", "k2"]) == {}
    assert lease_x.beat() and claims_x.lost() is None and stopped == []
    client = MlflowClient(uri)
    lock = client.get_experiment_by_name(claim_experiment_name("k1"))
    lease_x.client.set_experiment_tag(exp_x, S.LEASE_HOST, "host-a")  # X on another host, its beats unseen
    lease_x.client.set_experiment_tag(exp_x, S.LEASE_HEARTBEAT, "0")
    client.set_experiment_tag(lock.experiment_id, S.LEASE_HOST, "host-a")
    assert claims_y.take(["k1"]) == {}
    assert not lease_x.beat() and lease_x.lost.is_set() and stopped == [None]
    message = str(lease_x.lost_error())
    assert "the claim of trial k1 was taken over by study 'y'" in message and "stopped its trials" in message
    claims_y.release()
    lease_y.release()
    lease_x.release()


def test_a_claim_this_driver_frees_while_its_heartbeat_looks_is_not_taken_from_it(tmp_path, monkeypatch):
    """The heartbeat reads a claim's lock just as the driver frees its claims (its end): the lock is gone, but
    the driver gave it up itself, so nothing was taken from it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment, lease = a_study(uri, "x")
    claims = KeyClaims(uri, experiment, "x", lease.owner)
    claims.store = None  # as on a tracking server
    assert claims.take(["k1", "k2"]) == {}
    lookup, freed = claims.client.get_experiment_by_name, []

    def freed_meanwhile(name):
        if not freed:
            freed.append(name)
            claims.release()  # the main thread frees the claims between the copy of them and this lookup
        return lookup(name)

    monkeypatch.setattr(claims.client, "get_experiment_by_name", freed_meanwhile)
    assert claims.lost() is None and freed
    lease.release()


def test_a_trial_another_studys_driver_runs_is_left_to_it_then_reused(study_dir, capsys):
    """Study ``other`` (another driver, live) claims the one trial of study ``tiny``: ``tiny`` names it, runs
    nothing, writes no run for it and exits 4; once ``other`` finished it, the same command reuses its result."""
    uri, spec, trial, claims, lease = claimed_by_other(study_dir)

    assert main(cli_args(study_dir, spec, "--no-report")) == EXIT_WAITING
    out, err = capsys.readouterr()
    assert f"tiny/base/seed0: trial {trial.key} is being run by study 'other'" in out
    assert "run the same command again once those finished" in err
    tiny = MlflowClient(uri).get_experiment_by_name("tiny").experiment_id
    assert MlflowClient(uri).search_runs([tiny]) == []  # nothing trained, nothing opened

    other = StudyTracker(uri, "other", "hash")
    run_id = other.open_trial(trial, {}, rerun=False)
    other.finish_trial(run_id, {"top1": 50.0, "top5": 90.0, "test_loss": 1.0}, None, str(study_dir / "w"))
    claims.release()
    lease.release()
    assert main(cli_args(study_dir, spec, "--no-report")) == EXIT_OK
    assert "reused from" in capsys.readouterr().out
    (run,) = MlflowClient(uri).search_runs([tiny], f"tags.`{S.TAG_KIND}` = '{S.KIND_TRIAL}'")
    assert run.data.tags[S.TAG_REUSED_FROM] == run_id and run.info.status == S.STATUS_FINISHED


@pytest.mark.slow
def test_two_studies_sharing_a_trial_started_together_train_it_once(study_dir):
    """Two real drivers (a local Ray each) of studies ``one`` and ``two``, which share their one trial, started
    at the same time: one trains it, the other leaves it to that one (exit 4, naming it), and run again after,
    reuses its result. The trial is trained once."""
    from ean.train import read_starts
    from tests.runners.conftest import run_subprocess
    from tests.runners.test_driver_faults import Driver, workdirs

    specs = {name: write_yaml(study_dir / f"{name}.yaml", tiny_spec([BASE], name=name)) for name in ("one", "two")}
    drivers = {name: Driver(study_dir, cli_args(study_dir, spec, "trainer.epochs=6", "--no-report"))
               for name, spec in specs.items()}  # fmt: skip
    codes = {name: d.process.wait(timeout=600) for name, d in drivers.items()}
    assert sorted(codes.values()) == [EXIT_OK, EXIT_WAITING], {n: d.output[-2000:] for n, d in drivers.items()}
    trained = next(n for n, code in codes.items() if code == EXIT_OK)
    left = next(n for n, code in codes.items() if code == EXIT_WAITING)
    assert f"is being run by study '{trained}'" in drivers[left].output
    again = run_subprocess(study_dir, cli_args(study_dir, specs[left], "trainer.epochs=6", "--no-report"))
    assert again.returncode == 0 and f"reused from {trained}/base/seed0" in again.stdout, again.stdout[-3000:]
    assert workdirs(study_dir, left) == []  # no trial of that study ever started
    (workdir,) = workdirs(study_dir, trained)
    assert [s["start_epoch"] for s in read_starts(workdir)] == [1]


def test_a_key_another_driver_finished_while_this_one_claimed_is_reused_not_trained(tmp_path, monkeypatch):
    """Driver B read the states while study ``other``'s run of the key was still RUNNING; ``other`` finished it and
    released its claim before B claimed it: B, holding the claim, reads the states again and reuses the run."""
    import argparse

    from runners.session import StudySession
    from runners.trials import TrialState
    from study.spec import load_spec

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec([BASE])))
    (trial,) = build_plan(spec, [], [], [0], tmp_path)
    other = StudyTracker(uri, "other", "hash")
    run_id = other.open_trial(trial, {}, rerun=False)
    real_take = KeyClaims.take

    def finished_meanwhile(self, keys):
        keys = list(keys)
        if trial.key in keys and other.status(run_id) != S.STATUS_FINISHED:
            other.finish_trial(run_id, {"top1": 50.0}, None, str(tmp_path / "w"))
        return real_take(self, keys)

    monkeypatch.setattr(KeyClaims, "take", finished_meanwhile)
    args = argparse.Namespace(storage=str(tmp_path / "runs"), rerun=False, address=None)
    session = StudySession(spec, [trial], args, uri, ["tiny.yaml"])
    try:
        session.open()
        assert session.todo == [] and trial.state == TrialState.REUSED and trial.run_id == run_id
    finally:
        session.close()


def test_claims_a_store_cannot_free_now_are_left_and_the_lease_is_still_released(tmp_path, monkeypatch):
    """The tracking server does not answer at the end: releasing the claims logs it, and ``close`` still
    releases the lease."""
    import argparse

    from runners.session import StudySession
    from study.spec import load_spec

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment, lease = a_study(uri, "tiny")
    claims = KeyClaims(uri, experiment, "tiny", lease.owner)
    claims.store = None  # as on a tracking server
    assert claims.take(["k1", "k2"]) == {}

    def down(*args, **kwargs):
        raise ConnectionError("Max retries exceeded")

    monkeypatch.setattr(claims.client, "get_experiment_by_name", down)
    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec([BASE])))
    args = argparse.Namespace(storage=str(tmp_path / "runs"), rerun=False, address=None)
    session = StudySession(spec, [], args, uri, ["tiny.yaml"])
    session.claims, session.lease = claims, lease
    session.close()
    assert session.lease is None and session.claims is None
    assert MlflowClient(uri).get_experiment(experiment).tags[S.LEASE_OWNER] == ""


def test_a_claim_whose_study_was_deleted_for_good_is_judged_by_its_pid(tmp_path):
    """``mlflow gc`` purged the claiming study's experiment: the claim's pid (gone) says its driver is dead."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment, lease = a_study(uri, "table9")
    client = MlflowClient(uri)
    tags = {S.CLAIM_STUDY: "gone", S.CLAIM_EXPERIMENT: "987654", S.LEASE_OWNER: "x", S.LEASE_PID: str(2**22 + 7)}
    client.create_experiment(claim_experiment_name("k1"), tags={**tags, S.LEASE_HOST: socket.gethostname()})
    claims = KeyClaims(uri, experiment, "table9", lease.owner)
    claims.store = None
    assert claims.take(["k1"]) == {}
    claims.release()
    lease.release()


def test_a_released_claim_file_names_nobody(tmp_path):
    """A driver refused after the holder left and before the next wrote its name reads no stale holder."""
    from runners.lease import FileMutex

    first, second = FileMutex(tmp_path / "k1"), FileMutex(tmp_path / "k1")
    assert first.take()
    first.write("study 'table8' (pid 1 on h)")
    assert not second.take() and second.read() == "study 'table8' (pid 1 on h)"
    first.give()
    assert second.read() == ""


def _session(tmp_path, rows: list[dict]):
    import argparse

    from runners.session import StudySession
    from study.spec import load_spec

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec(rows)))
    trials = build_plan(spec, [], [], [0], tmp_path)
    args = argparse.Namespace(storage=str(tmp_path / "runs"), rerun=False, address=None)
    return StudySession(spec, trials, args, f"sqlite:///{tmp_path / 'mlflow.db'}", ["tiny.yaml"]), trials


EAB = {"id": "eab", "label": "+EAB", "overrides": ["block=eab", "regions=none"]}


def test_a_trial_whose_source_went_while_claiming_is_claimed_and_run_not_skipped(tmp_path, monkeypatch):
    """Row eab was to be reused from study ``other``, whose run was deleted between reading the states and reading
    them again under the claims: eab is run here (claimed), not skipped."""
    from runners.trials import TrialState

    session, (base, eab) = _session(tmp_path, [BASE, EAB])
    other = StudyTracker(session.uri, "other", "hash")
    source = other.open_trial(eab, {}, rerun=False)
    other.finish_trial(source, {"top1": 50.0}, None, str(tmp_path / "w"))
    real_take = KeyClaims.take

    def source_deleted(self, keys):
        if MlflowClient(session.uri).get_run(source).info.lifecycle_stage == "active":
            MlflowClient(session.uri).delete_run(source)
        return real_take(self, keys)

    monkeypatch.setattr(KeyClaims, "take", source_deleted)
    try:
        session.open()
        assert {t.row.id for t in session.todo} == {"base", "eab"} and session.waiting == []
        assert eab.state == TrialState.NEW and set(session.claims._held) == {base.key, eab.key}
    finally:
        session.close()


def test_a_lone_trial_another_driver_finished_while_holding_its_claim_is_reused(tmp_path):
    """Study ``other`` finished the only trial and still runs (its claim held): read again, the trial is reused,
    not left waiting."""
    from runners.trials import TrialState

    session, (trial,) = _session(tmp_path, [BASE])
    experiment, lease = a_study(session.uri, "other")
    claims = KeyClaims(session.uri, experiment, "other", lease.owner)
    other = StudyTracker(session.uri, "other", "hash")
    run_id = other.open_trial(trial, {}, rerun=False)
    assert claims.take([trial.key]) == {}
    real_mark = StudyTracker.mark_cached
    calls = []

    def finished_after_the_first_read(self, trials, rerun, rerun_since=None):
        real_mark(self, trials, rerun, rerun_since)
        calls.append(1)
        if len(calls) == 2 and other.status(run_id) != S.STATUS_FINISHED:  # after mark(), before claim()
            other.finish_trial(run_id, {"top1": 50.0}, None, str(tmp_path / "w"))

    try:
        StudyTracker.mark_cached = finished_after_the_first_read
        session.open()
        assert session.todo == [] and session.waiting == [] and trial.state == TrialState.REUSED
    finally:
        StudyTracker.mark_cached = real_mark
        session.close()
        claims.release()
        lease.release()


def test_with_wait_a_driver_waits_for_the_trial_another_driver_runs_then_reuses_it(study_dir, capsys, monkeypatch):
    """``--wait``: instead of exit 4, the driver looks again (naming the trial once) until the other study
    finished it, then reuses its result and ends 0."""
    import types

    uri, spec, trial, claims, lease = claimed_by_other(study_dir)
    looks = []

    def sleep(seconds: float) -> None:  # the other driver finishes the trial after the driver looked 3 times
        looks.append(seconds)
        if len(looks) == 3:
            other = StudyTracker(uri, "other", "hash")
            run_id = other.open_trial(trial, {}, rerun=False)
            other.finish_trial(run_id, {"top1": 50.0, "top5": 90.0, "test_loss": 1.0}, None, str(study_dir / "w"))
            claims.release()
            lease.release()
        if len(looks) > 10:
            raise AssertionError("still waiting after the other driver finished")

    monkeypatch.setattr("runners.run.time", types.SimpleNamespace(sleep=sleep))
    try:
        assert main(cli_args(study_dir, spec, "--no-report", "--wait", "--wait-every", "7")) == EXIT_OK
    finally:
        claims.release()
        lease.release()
    out, err = capsys.readouterr()
    assert looks == [7.0] * 3 and out.count("is being run by study 'other'") == 1 and err.count("--wait") == 1
    assert "reused from" in out, out


@pytest.mark.slow
def test_with_wait_a_trial_whose_claim_ends_without_a_result_is_trained_here(study_dir, capsys, monkeypatch):
    """``--wait``: the other driver stops without finishing the trial (its claim ends, no FINISHED run): the waiting
    driver claims it and trains it, once."""
    import types

    from ean.train import read_starts
    from tests.runners.test_driver_faults import workdirs

    uri, spec, trial, claims, lease = claimed_by_other(study_dir)
    looks = []

    def sleep(seconds: float) -> None:
        looks.append(seconds)
        if len(looks) == 2:  # the other driver stops: its claim and lease end, nothing finished
            claims.release()
            lease.release()
        if len(looks) > 10:
            raise AssertionError("still waiting after the other driver stopped")

    monkeypatch.setattr("runners.run.time", types.SimpleNamespace(sleep=sleep))
    try:
        assert main(cli_args(study_dir, spec, "--no-report", "--wait")) == EXIT_OK
    finally:
        claims.release()
        lease.release()
    assert len(looks) == 2 and "1 trial(s) to run" in capsys.readouterr().out
    (workdir,) = workdirs(study_dir, "tiny")
    assert [s["start_epoch"] for s in read_starts(workdir)] == [1]


def test_with_wait_a_driver_that_ends_on_a_failure_does_not_say_it_waits(tmp_path):
    """A failed trial ends the invocation (exit 1) though others wait: the note says to run the command again."""
    session, (trial,) = _session(tmp_path, [BASE])
    session.args.wait, session.args.wait_every = True, 60.0
    session.waiting = [trial]
    assert "waiting for them (--wait" in session.waiting_note()
    assert "run the same command again" in session.waiting_note(waits=False)
    session.announced = frozenset({trial.name})
    assert session.waiting_note() is None and "run the same command again" in session.waiting_note(waits=False)


def test_the_rounds_of_a_wait_share_one_lease_owner_and_what_they_said_and_a_lost_lease_ends_them(monkeypatch):
    import argparse
    import types

    import runners.run as run_module

    rounds = []

    class Round:  # a StudySession whose trials wait twice, then are reused
        def __init__(self, *args, announced, said, owner, **kwargs):
            rounds.append((announced, id(said), owner))
            self.waiting, self.lost = [types.SimpleNamespace(name="tiny/base/seed0")], None

        def execute(self):
            return EXIT_WAITING if len(rounds) < 3 else EXIT_OK

    monkeypatch.setattr(run_module, "StudySession", Round)
    monkeypatch.setattr(run_module, "time", types.SimpleNamespace(sleep=lambda s: None))
    args = argparse.Namespace(wait=True, wait_every=1.0)
    status, _ = run_module.run_study(None, [], args, "uri", [], None, None)
    assert status == EXIT_OK and len(rounds) == 3
    assert len({owner for _, _, owner in rounds}) == 1 and len({said for _, said, _ in rounds}) == 1
    assert [announced for announced, _, _ in rounds] == [frozenset(), {"tiny/base/seed0"}, {"tiny/base/seed0"}]

    class Lost(Round):
        def execute(self):
            assert len(rounds) < 3, "went on waiting with the lease lost"
            self.lost = LeaseHeld("another driver took the lease over")
            return EXIT_WAITING

    rounds.clear()
    monkeypatch.setattr(run_module, "StudySession", Lost)
    with pytest.raises(LeaseHeld, match="took the lease over"):
        run_module.run_study(None, [], args, "uri", [], None, None)
    assert len(rounds) == 1


def test_drivers_naming_a_store_through_a_symlink_and_its_file_share_its_lease_and_claims(tmp_path):
    (tmp_path / "data").mkdir()
    real, link = tmp_path / "data" / "real.db", tmp_path / "mlflow.db"
    experiment, lease = a_study(f"sqlite:///{real}", "tiny")
    link.symlink_to(real)
    try:
        with pytest.raises(LeaseHeld):
            StudyLease(f"sqlite:///{link}", experiment, "tiny", "the other").acquire()
        assert StudyLease(f"sqlite:///{link}", experiment, "tiny", "x")._mutex.path == lease._mutex.path  # one flock
        mine = KeyClaims(f"sqlite:///{real}", experiment, "tiny", lease.owner)
        assert mine.take(["k1"]) == {}
        theirs = KeyClaims(f"sqlite:///{link}", experiment, "tiny", "another owner")
        assert list(theirs.take(["k1"])) == ["k1"]
        mine.release()
    finally:
        lease.release()


def test_a_dry_run_names_the_driver_that_runs_a_trial_now(study_dir, capsys):
    """A trial another study's live driver claims is ``new`` here, but a run would leave it to that driver: the
    plan says who runs it. A claim left by a dead driver (its pid gone) is not named."""
    from runners.claims import claims_folder
    from runners.lease import pid_alive

    uri, spec, trial, claims, lease = claimed_by_other(study_dir)
    try:
        assert main(cli_args(study_dir, spec, "--dry-run")) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("tiny/base/seed0"))
        assert "new" in line and f"being run by study 'other' (pid {os.getpid()} on {socket.gethostname()})" in line
    finally:
        claims.release()
        lease.release()
    dead = next(pid for pid in range(2**22 - 1, 1, -1) if not pid_alive(pid))
    (claims_folder(study_dir / "mlflow.db") / trial.key).write_text(
        f"study 'gone' (pid {dead} on {socket.gethostname()})"
    )
    assert main(cli_args(study_dir, spec, "--dry-run")) == 0
    assert "being run by" not in capsys.readouterr().out


def test_a_dry_run_on_a_tracking_server_names_a_live_claim_only(tmp_path, monkeypatch):
    from runners import claims as claims_module

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment, lease = a_study(uri, "table8")
    first = KeyClaims(uri, experiment, "table8", lease.owner)
    first.store = None  # as on a tracking server
    assert first.take(["k1"]) == {}
    monkeypatch.setattr(claims_module, "sqlite_path", lambda uri: None)  # the reader, too
    assert claims_module.claimed_by(uri, ["k1", "k2"]) == {
        "k1": f"study 'table8' (pid {os.getpid()} on {socket.gethostname()})"
    }
    lease.release()  # the driver dies: its lease is not held, its pid is gone
    lock = MlflowClient(uri).get_experiment_by_name(claim_experiment_name("k1"))
    MlflowClient(uri).set_experiment_tag(lock.experiment_id, S.LEASE_PID, str(2**22 + 12345))
    assert claims_module.claimed_by(uri, ["k1"]) == {}
    first.release()


def _finish_pending(journal, key: str) -> dict:
    """Journals a ``finish`` of ``key`` that MLflow has not taken (the store did not answer before the driver
    ended); returns the entry."""
    from runners.journal import Journal

    return Journal(journal).append({"op": "finish", "key": key, "final": {"top1": 1.0}, "workdir": "w"})


def test_a_result_left_in_a_stopped_drivers_journal_keeps_its_key_until_written(tmp_path):
    """Study table8 ends with its result of k1 still in its journal (MLflow did not answer): its claim file keeps
    naming it and that journal, and table9 is told to run table8 again instead of training k1 a second time.
    Once table8's next invocation wrote the journal, table9 takes the key. A key table8 has no pending result of
    is released as before."""
    from runners.claims import claims_folder, held_by
    from runners.journal import Journal

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (exp_a, lease_a), (exp_b, lease_b) = a_study(uri, "table8"), a_study(uri, "table9")
    journal_a = tmp_path / "runs" / "table8" / "_mlflow_journal.jsonl"
    first = KeyClaims(uri, exp_a, "table8", lease_a.owner, journal=journal_a)
    second = KeyClaims(uri, exp_b, "table9", lease_b.owner, journal=tmp_path / "runs" / "table9" / "j.jsonl")
    assert first.take(["k1", "k2"]) == {}
    entry = _finish_pending(journal_a, "k1")
    first.release()
    assert (claims_folder(tmp_path / "mlflow.db") / "k2").read_text() == ""
    refused = second.take(["k1", "k2"])
    assert list(refused) == ["k1"], refused
    said = held_by(refused["k1"])
    assert said.startswith("finished by study 'table8'") and str(journal_a) in said
    assert "run study 'table8' again" in said
    assert second.take(["k1"]).keys() == {"k1"}  # refused again: still pending, the file still names table8
    Journal(journal_a).mark_applied(entry["seq"])  # table8 ran again: MLflow has the result
    assert second.take(["k1"]) == {}
    second.release()
    lease_a.release()
    lease_b.release()


def test_a_dead_drivers_journaled_result_is_named_by_a_dry_run_and_kept_from_other_drivers(study_dir, capsys):
    """A driver killed with its result of a key still in its journal (no release ran, the kernel freed its flock):
    a dry run of another study says to run that study again, and a run of it does not train the key (exit 4),
    until that journal is written."""
    from runners.claims import claims_folder
    from runners.journal import Journal
    from runners.lease import pid_alive

    uri = f"sqlite:///{study_dir / 'mlflow.db'}"
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([BASE]))
    (trial,) = build_plan(parse_spec(tiny_spec([BASE])), [], [], [0], study_dir)
    StudyTracker(uri, "gone", "hash")  # the store and the other study's experiment exist
    journal = study_dir / "runs" / "gone" / "_mlflow_journal.jsonl"
    entry = _finish_pending(journal, trial.key)
    dead = next(pid for pid in range(2**22 - 1, 1, -1) if not pid_alive(pid))
    folder = claims_folder((study_dir / "mlflow.db").resolve())
    folder.mkdir(exist_ok=True)
    (folder / trial.key).write_text(f"study 'gone' (pid {dead} on {socket.gethostname()})\njournal: {journal}")

    assert main(cli_args(study_dir, spec, "--dry-run")) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("tiny/base/seed0"))
    assert "finished by study 'gone'" in line and "run study 'gone' again" in line and "leaves it" not in line
    assert main(cli_args(study_dir, spec, "--no-report")) == EXIT_WAITING
    assert f"trial {trial.key} is finished by study 'gone'" in capsys.readouterr().out
    tiny = MlflowClient(uri).get_experiment_by_name("tiny").experiment_id
    assert MlflowClient(uri).search_runs([tiny]) == []  # nothing trained, nothing opened

    Journal(journal).mark_applied(entry["seq"])
    assert main(cli_args(study_dir, spec, "--dry-run")) == 0
    assert "finished by" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_result_a_locked_store_did_not_take_is_not_trained_again_by_another_study(study_dir, capsys, monkeypatch):
    """Study ``one`` trains the trial, but the sqlite store stays locked when its result is written: the driver
    exits 3 with the result in its journal. Study ``two``, which shares the trial, then trains nothing and says to
    run ``one`` again (exit 4); ``one`` run again writes its result, and ``two`` reuses it. Trained once."""
    from ean.train import read_starts
    from runners.session import EXIT_STORE_DOWN
    from tests.runners.test_driver_faults import workdirs

    specs = {name: write_yaml(study_dir / f"{name}.yaml", tiny_spec([BASE], name=name)) for name in ("one", "two")}
    finish = StudyTracker.finish_trial

    def locked(self, *args, **kwargs):
        raise RuntimeError("sqlite3.OperationalError: database is locked")

    monkeypatch.setattr(StudyTracker, "finish_trial", locked)
    assert main(cli_args(study_dir, specs["one"], "--no-report", "--mlflow-wait", "1")) == EXIT_STORE_DOWN
    monkeypatch.setattr(StudyTracker, "finish_trial", finish)
    capsys.readouterr()
    assert main(cli_args(study_dir, specs["two"], "--no-report")) == EXIT_WAITING
    assert "is finished by study 'one'" in capsys.readouterr().out
    assert workdirs(study_dir, "two") == []
    assert main(cli_args(study_dir, specs["one"], "--no-report")) == EXIT_OK
    assert main(cli_args(study_dir, specs["two"], "--no-report")) == EXIT_OK
    assert "reused from one/base/seed0" in capsys.readouterr().out
    assert workdirs(study_dir, "two") == []
    (workdir,) = workdirs(study_dir, "one")
    assert [s["start_epoch"] for s in read_starts(workdir)] == [1]


def test_only_a_pending_finish_of_that_very_key_in_another_studys_journal_holds_it(tmp_path, caplog):
    """A dead driver's claim files name its journal: the key whose ``finish`` waits there is held; a key with only
    an epoch waiting, a key whose file names this study's own journal, and a key whose journal cannot be read
    (said in a warning) are taken."""
    from runners.claims import claims_folder
    from runners.journal import Journal
    from runners.lease import pid_alive

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment, lease = a_study(uri, "table9")
    theirs, ours = tmp_path / "runs" / "table8" / "j.jsonl", tmp_path / "runs" / "table9" / "j.jsonl"
    _finish_pending(theirs, "k1")
    Journal(theirs).append({"op": "epoch", "key": "k2", "epoch": 1, "metrics": {}})
    _finish_pending(ours, "k3")
    broken = tmp_path / "runs" / "gone" / "j.jsonl"
    _finish_pending(broken, "k4")
    broken.with_name("j.jsonl.applied").write_text("not a number")
    dead = next(pid for pid in range(2**22 - 1, 1, -1) if not pid_alive(pid))
    folder = claims_folder((tmp_path / "mlflow.db").resolve())
    folder.mkdir()
    for key, journal in (("k1", theirs), ("k2", theirs), ("k3", ours), ("k4", broken)):
        (folder / key).write_text(f"study 'x' (pid {dead} on {socket.gethostname()})\njournal: {journal}")
    claims = KeyClaims(uri, experiment, "table9", lease.owner, journal=ours)
    refused = claims.take(["k1", "k2", "k3", "k4"])
    assert list(refused) == ["k1"] and f"--storage {tmp_path / 'runs'}" in refused["k1"]
    assert "cannot be read" in caplog.text and str(broken) in caplog.text
    claims.release()  # k3's finish waits in this study's own journal: its file keeps naming it
    assert (folder / "k3").read_text().endswith(f"journal: {ours}") and (folder / "k2").read_text() == ""
    assert KeyClaims(uri, experiment, "table9", lease.owner, journal=ours).take(["k4"]) == {}  # its flock was freed
    lease.release()


def test_a_session_names_its_journal_in_the_claims_it_takes(tmp_path):
    session, (trial,) = _session(tmp_path, [BASE])
    try:
        session.open()
        text = (Path(session.claims._held[trial.key].path)).read_text()
        assert text.splitlines()[1] == f"journal: {session.journal_path}"
        assert session.lease.watch == session.claims.lost  # a claim taken over stops it, as a lost lease
    finally:
        session.close()


def test_a_journal_deleted_beside_its_applied_marker_still_holds_its_new_writes(tmp_path):
    """Deleting a study's journal by hand leaves its applied marker (sequence N): the next writes are numbered
    after N, so they count as pending (replayed, and holding their keys' claims) instead of as applied."""
    from runners.journal import Journal

    path = tmp_path / "_mlflow_journal.jsonl"
    for _ in range(3):
        _finish_pending(path, "k1")
    Journal(path).mark_applied(3)
    path.unlink()
    entry = _finish_pending(path, "k5")
    assert entry["seq"] == 4 and Journal(path).pending() == [entry]
    Journal(path).mark_applied(9)  # a journal cut short or restored by hand: its marker past its last entry
    assert _finish_pending(path, "k6")["seq"] == 10
