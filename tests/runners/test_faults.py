"""Faults of the driver's bookkeeping, against a real sqlite MLflow store (no Ray): runs born with their tags,
every orphan reconciled, history backfilled, the study's lease, an unreachable server, a dry run that writes
nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runners.epochs import EpochReport
from runners.lease import ExperimentMutex, LeaseHeld, StudyLease, lock_experiment_name, read_holder
from runners.plan import Trial, TrialState
from runners.tracking import StudyTracker
from study import mlflow_schema as S
from study.spec import Row
from tests.runners.conftest import REPO, cli_args, tiny_spec, write_yaml


@pytest.fixture
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def a_trial(row: str = "base", seed: int = 0, key: str = "k0") -> Trial:
    config = {"trainer": {"epochs": 3}}
    return Trial(
        study="tiny", row=Row(id=row, label=row.title()), seed=seed, config=config, key=key, data_fingerprint="fp"
    )


class FailingTags(Exception):
    pass


def test_a_trial_run_is_born_with_all_its_tags(store, monkeypatch):
    """A driver killed right after creating a run leaves a run that reconcile and the next plan recognise."""
    tracker = StudyTracker(store, "tiny", "hash")
    trial = a_trial()

    def no_more_writes(*args, **kwargs):
        raise FailingTags("the driver died here")

    monkeypatch.setattr(tracker.client, "set_tag", no_more_writes)
    monkeypatch.setattr(tracker.client, "log_batch", no_more_writes)
    monkeypatch.setattr(tracker.client, "log_artifact", no_more_writes)
    with pytest.raises(FailingTags):
        tracker.open_trial(trial, {S.TAG_DATASET: "synthetic", S.TAG_PROTOCOL: "1x1"}, rerun=False)
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    for tag in (S.TAG_KIND, S.TAG_STUDY, S.TAG_ROW, S.TAG_SEED, S.TAG_TRIAL_KEY, S.TAG_DATASET, S.TAG_PROTOCOL):
        assert run.data.tags.get(tag), f"{tag} missing on a run created before the driver died"
    assert StudyTracker(store, "tiny", "hash").trial_runs()["k0"][0].info.run_id == run.info.run_id


def test_reconcile_finds_every_orphan(store):
    tracker = StudyTracker(store, "tiny", "hash")
    client = MlflowClient(store)
    exp = tracker.experiment_id
    tagged = {S.TAG_KIND: S.KIND_TRIAL, S.TAG_STUDY: "tiny", S.TAG_TRIAL_KEY: "k1"}
    orphans = [
        client.create_run(exp, tags=tagged).info.run_id,  # a trial
        client.create_run(exp, tags={S.TAG_KIND: S.KIND_STUDY, S.TAG_STUDY: "tiny"}).info.run_id,  # a parent
        client.create_run(exp).info.run_id,  # no tags at all
    ]
    copies = [  # an ensemble's average and a reused trial's copy, cut short: nothing computed in them
        client.create_run(exp, tags={**tagged, S.TAG_ENSEMBLE_OF: "a,b"}).info.run_id,
        client.create_run(exp, tags={**tagged, S.TAG_REUSED_FROM: "r0"}).info.run_id,
    ]
    done = client.create_run(exp, tags=tagged).info.run_id
    client.set_terminated(done, S.STATUS_FINISHED)
    assert sorted(tracker.reconcile()) == sorted(orphans + copies)
    assert {client.get_run(r).info.status for r in orphans} == {S.STATUS_KILLED}
    assert {client.get_run(r).info.lifecycle_stage for r in copies} == {"deleted"}
    assert client.get_run(done).info.status == S.STATUS_FINISHED
    assert {r.info.run_id for r in client.search_runs([exp])} == {*orphans, done}


def test_backfill_logs_each_missing_epoch_once(store):
    tracker = StudyTracker(store, "tiny", "hash")
    trial = a_trial()
    run_id = tracker.open_trial(trial, {}, rerun=False)
    tracker.log_epoch(run_id, EpochReport(1, {"train_loss": 1.0}))
    tracker.log_epoch(run_id, EpochReport(3, {"train_loss": 3.0}))
    history = [{"epoch": e, "train_loss": float(e), "epoch_time_s": 0.1} for e in (1, 2, 3)]
    # a new driver (the one that missed epoch 2) reopens the run, then the trial ends with its history
    trial.state = TrialState.RESUME
    again = StudyTracker(store, "tiny", "hash")
    again.open_trial(trial, {}, rerun=False)
    assert again.log_epoch(run_id, EpochReport(3, {"train_loss": 3.0})) is False  # replayed after a resume: skipped
    assert again.backfill(run_id, history, ("train_loss",)) == [2]
    steps = [(m.step, m.value) for m in MlflowClient(store).get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert again.backfill(run_id, history, ("train_loss",)) == []


def experiment(store: str) -> str:
    return StudyTracker(store, "tiny", "hash").experiment_id


@pytest.mark.parametrize("mutex", ["file", "experiment"])
def test_a_second_driver_is_refused_naming_the_first(store, mutex):
    exp = experiment(store)
    first = StudyLease(store, exp, "tiny", "python -m runners.run tiny --rows base", heartbeat_s=0.2, mutex=mutex)
    assert first.acquire() is None
    try:
        with pytest.raises(LeaseHeld) as err:
            StudyLease(store, exp, "tiny", "python -m runners.run tiny --rows eab", mutex=mutex).acquire()
        message = str(err.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in message
        assert "--rows base" in message
        beat = read_holder(MlflowClient(store), exp).heartbeat
        time.sleep(0.6)
        assert read_holder(MlflowClient(store), exp).heartbeat > beat, "the holder renews its heartbeat"
    finally:
        first.release()
    assert read_holder(MlflowClient(store), exp) is None
    second = StudyLease(store, exp, "tiny", "again", mutex=mutex)
    assert second.acquire() is None
    second.release()


def test_two_drivers_that_both_read_a_free_lease_are_not_both_let_in(store, monkeypatch):
    """The second driver read the lease before the first wrote it, then stalled past the first's read-back: on
    a sqlite store the lease file's flock still keeps it out."""
    exp = experiment(store)
    first = StudyLease(store, exp, "tiny", "python -m runners.run tiny --rows base", heartbeat_s=60)
    first.acquire()
    try:
        real, reads = read_holder, []

        def stale_first_read(client, experiment_id):
            reads.append(experiment_id)
            return None if len(reads) == 1 else real(client, experiment_id)

        with monkeypatch.context() as patch:
            patch.setattr("runners.lease.read_holder", stale_first_read)
            second = StudyLease(store, exp, "tiny", "python -m runners.run tiny --rows eab")
            with pytest.raises(LeaseHeld):
                second.acquire()
        assert read_holder(MlflowClient(store), exp).owner == first.owner
    finally:
        first.release()
    third = StudyLease(store, exp, "tiny", "after")
    assert third.acquire() is None  # released: the flock with it
    third.release()


def test_a_heartbeat_that_finds_the_lease_taken_says_so_and_stops_beating(store):
    """Another driver took the lease over (it judged this one dead): the next heartbeat calls ``on_lost`` with
    it, and releasing leaves the other's lease as it is."""
    import threading

    exp = experiment(store)
    lost, called = threading.Event(), []
    lease = StudyLease(store, exp, "tiny", "me", heartbeat_s=0.1, on_lost=lambda h: (called.append(h), lost.set()))
    lease.acquire()
    write_holder(store, exp, "host-b", 4242, time.time())  # owner "other"
    assert lost.wait(10) and lease.lost.is_set()
    assert [h.owner for h in called] == ["other"] and lease.lost_to.host == "host-b"
    assert "host-b" in str(lease.lost_error()) and "wrote nothing more" in str(lease.lost_error())
    beat = read_holder(MlflowClient(store), exp).heartbeat
    time.sleep(0.3)
    assert read_holder(MlflowClient(store), exp).heartbeat == beat, "it no longer beats over the other's lease"
    lease.release()
    assert read_holder(MlflowClient(store), exp).owner == "other"


def test_a_fenced_writer_journals_and_applies_nothing_more(store, tmp_path):
    """``fence``: once another driver holds the lease, this driver's writes (an epoch, a kill, an opening) are
    neither journaled nor applied."""
    from runners.journal import BufferedTracker, Journal

    tracker = StudyTracker(store, "tiny", "hash")
    run_id = tracker.open_trial(a_trial(), {}, rerun=False)
    journal = Journal(tmp_path / "journal.jsonl")
    writer = BufferedTracker(tracker, journal, S.EPOCH_LOGGED, report=lambda line: None)
    writer.log_epoch("k0", EpochReport(1, {"train_loss": 1.0}))
    assert writer.flush(30) == 0
    writer.fence()
    writer.log_epoch("k0", EpochReport(2, {"train_loss": 0.5}))
    writer.submit("kill", key="k0", reason="stopped")
    writer.open_trial(a_trial(key="k1"), {}, rerun=False)
    writer.close()
    assert [e["op"] for e in journal.pending()] == [] and len(journal.path.read_text().splitlines()) == 1
    assert [m.step for m in MlflowClient(store).get_metric_history(run_id, "train_loss")] == [1]
    assert MlflowClient(store).get_run(run_id).info.status == S.STATUS_RUNNING


@pytest.mark.parametrize("breaks", ["preparation", "applied marker"])
def test_an_error_no_write_gets_past_stops_the_writer_says_why_and_keeps_the_writes(store, tmp_path, breaks):
    """The preparation whose result is the tracker failed, or the journal's applied marker cannot be written (a
    full disk): the writer stops at once, ``flush`` does not wait its time out, the cause is reported and kept
    for the driver, and the writes stay in the journal for the next invocation."""
    from concurrent.futures import Future

    from runners.journal import BufferedTracker, Journal

    journal = Journal(tmp_path / "journal.jsonl")
    tracker: Future = Future()
    if breaks == "preparation":
        tracker.set_exception(PermissionError("cannot write the artifact location /x"))
    else:
        tracker.set_result(StudyTracker(store, "tiny", "hash"))

        def full_disk(seq):
            raise OSError(28, "No space left on device")

        journal.mark_applied = full_disk
    lines: list[str] = []
    writer = BufferedTracker(tracker, journal, S.EPOCH_LOGGED, report=lines.append)
    writer.open_trial(a_trial(), {S.TAG_DATASET: "synthetic"}, rerun=False)
    writer.submit("end_parent", status=S.STATUS_FINISHED)
    left: list[int] = []
    flushing = threading.Thread(target=lambda: left.append(writer.flush(3600)), daemon=True)
    flushing.start()
    flushing.join(timeout=120)
    assert left == [2], "flush waited for writes the stopped writer will never apply"
    writer.close()
    cause = "artifact location" if breaks == "preparation" else "No space left"
    assert cause in str(writer.error) and any("MLflow writes stopped" in ln and cause in ln for ln in lines)
    assert [e["op"] for e in Journal(journal.path).pending()] == ["open", "end_parent"]


def test_a_lost_lease_fences_the_sessions_writer_and_asks_for_a_stop(store, tmp_path, monkeypatch):
    """What the heartbeat's ``on_lost`` does in a session: no more MLflow writes, the trials asked to stop."""
    from runners import signals
    from runners.journal import BufferedTracker, Journal

    monkeypatch.setattr(signals, "_state", {"signum": None, "deferred": True})
    session = session_of(store, tmp_path, [a_trial()])
    writer = BufferedTracker(StudyTracker(store, "tiny", "hash"), Journal(tmp_path / "j.jsonl"), (), lambda ln: None)
    session.writer = writer
    session.lease_lost(None)
    assert writer.fenced.is_set() and signals.requested() is not None
    writer.close()


def lock_experiments(store: str) -> dict[str, str]:
    """Name -> lifecycle stage of every lock experiment in the store."""
    from mlflow.entities import ViewType

    found = MlflowClient(store).search_experiments(view_type=ViewType.ALL, filter_string="name LIKE 'ean-lease/%'")
    return {e.name: e.lifecycle_stage for e in found}


def test_a_lock_experiment_is_created_once_whichever_driver_comes_first(store):
    """Six drivers (threads) asking at the same instant, on a tracking server's mutex (a lock experiment, here
    on MLflow's SQL store): exactly one is let in; its release leaves no active lock."""
    import threading

    exp = experiment(store)
    leases = [StudyLease(store, exp, "tiny", f"driver {i}", heartbeat_s=60, mutex="experiment") for i in range(6)]
    start, won, refused = threading.Barrier(len(leases)), [], []

    def ask(lease: StudyLease) -> None:
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except LeaseHeld:
            refused.append(lease)

    threads = [threading.Thread(target=ask, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(refused) == 5
    assert lock_experiments(store) == {lock_experiment_name(exp): "active"}
    won[0].release()
    (released,) = lock_experiments(store).items()
    assert released[0].startswith(lock_experiment_name(exp) + ".released-") and released[1] == "deleted"
    again = StudyLease(store, exp, "tiny", "after", mutex="experiment")
    assert again.acquire() is None
    again.release()


def test_a_lock_experiment_deleted_by_hand_blocks_no_driver(store):
    """Someone deleted the lock experiment in MLflow's UI while its driver ran (a deleted experiment keeps its
    name): the driver's release and the next driver's lease go through, the deleted lock restored and discarded."""
    exp = experiment(store)
    first = StudyLease(store, exp, "tiny", "first", heartbeat_s=60, mutex="experiment")
    first.acquire()
    client = MlflowClient(store)
    client.delete_experiment(client.get_experiment_by_name(lock_experiment_name(exp)).experiment_id)
    first.release()
    second = StudyLease(store, exp, "tiny", "second", mutex="experiment")
    assert second.acquire() is None
    assert lock_experiments(store)[lock_experiment_name(exp)] == "active"
    second.release()
    assert lock_experiment_name(exp) not in lock_experiments(store)


def dead_lock(store: str, exp: str, host: str, pid: int) -> None:
    tags = {S.LEASE_OWNER: "dead", S.LEASE_HOST: host, S.LEASE_PID: str(pid)}
    MlflowClient(store).create_experiment(lock_experiment_name(exp), tags=tags)


def test_a_driver_that_judged_a_dead_lock_then_stalled_is_not_let_in(store, monkeypatch):
    """The second driver found a dead driver's lock and stalled before discarding it; meanwhile the first
    discarded it and created its own. The second discards only the dead lock it read, and is refused."""
    exp = experiment(store)
    dead_lock(store, exp, socket.gethostname(), dead_pid())
    first = StudyLease(store, exp, "tiny", "first", heartbeat_s=60, mutex="experiment")
    second = StudyLease(store, exp, "tiny", "second", mutex="experiment")
    real_discard = ExperimentMutex._discard

    def stall_then_discard(mutex, lock_id):
        if mutex is second._mutex and first._thread is None:
            first.acquire()  # while the second stalls
        real_discard(mutex, lock_id)

    monkeypatch.setattr(ExperimentMutex, "_discard", stall_then_discard)
    try:
        with pytest.raises(LeaseHeld, match=r"first\b"):
            second.acquire()
        assert read_holder(MlflowClient(store), exp).owner == first.owner
        lock = MlflowClient(store).get_experiment_by_name(lock_experiment_name(exp))
        assert lock.tags[S.LEASE_OWNER] == first.owner
    finally:
        first.release()


def test_a_lock_experiment_of_a_driver_on_another_host_frees_once_stale(store):
    """A lock whose creator never wrote the study's lease tags (it died starting) is judged by its host and
    age: refused while young, taken over once older than ``stale_after_s``."""
    exp = experiment(store)
    dead_lock(store, exp, "other-host", 1)
    with pytest.raises(LeaseHeld, match="another driver is starting it"):
        StudyLease(store, exp, "tiny", "me", stale_after_s=60, mutex="experiment").acquire()
    lease = StudyLease(store, exp, "tiny", "me", stale_after_s=0.0, mutex="experiment")
    assert lease.acquire() is None
    lock = MlflowClient(store).get_experiment_by_name(lock_experiment_name(exp))
    assert lock.tags[S.LEASE_OWNER] == lease.owner
    lease.release()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_holder(store: str, exp: str, host: str, pid: int, heartbeat: float) -> None:
    client = MlflowClient(store)
    tags = {S.LEASE_HOST: host, S.LEASE_PID: str(pid), S.LEASE_HEARTBEAT: str(heartbeat), S.LEASE_OWNER: "other"}
    for key, value in tags.items():
        client.set_experiment_tag(exp, key, value)


def test_a_dead_driver_on_this_host_is_taken_over_at_once(store):
    exp = experiment(store)
    write_holder(store, exp, socket.gethostname(), dead_pid(), time.time())
    lease = StudyLease(store, exp, "tiny", "me")
    previous = lease.acquire()
    lease.release()
    assert previous is not None and previous.owner == "other"


def test_a_live_pid_on_this_host_that_started_after_the_heartbeat_is_another_process(store):
    """A container restarted with the same host name and pid (PID 1 of a killed driver): the live process of that
    pid started after the holder's last heartbeat, so it is not the holder, which is taken over. A process that
    ran at the heartbeat (this one, a heartbeat now) is alive."""
    exp = experiment(store)
    write_holder(store, exp, socket.gethostname(), os.getpid(), time.time())
    with pytest.raises(LeaseHeld, match=f"pid {os.getpid()}"):
        StudyLease(store, exp, "tiny", "me").acquire()
    before_this_process = time.time() - 365 * 24 * 3600  # a heartbeat a year ago
    write_holder(store, exp, socket.gethostname(), os.getpid(), before_this_process)
    lease = StudyLease(store, exp, "tiny", "me")
    previous = lease.acquire()
    lease.release()
    assert previous is not None and previous.pid == os.getpid()


def test_only_a_heartbeat_the_holder_wrote_dates_its_process():
    """A lock's creation time (the server's clock) does not date the pid's process: a creator on this host whose
    pid runs is alive whatever that time says; a heartbeat it wrote before its process started is another's."""
    from runners.lease import Holder

    def holder(beaten: bool) -> Holder:
        return Holder("o", socket.gethostname(), os.getpid(), "?", heartbeat=0.0, command="", beaten=beaten)

    assert holder(beaten=False).alive(60) and not holder(beaten=True).alive(60)


def test_run_trials_of_no_trial_starts_nothing():
    from runners.scheduler import run_trials

    assert run_trials([], None, None, None, None, None, 0, None) == {}


def test_a_driver_on_another_host_is_dead_once_its_heartbeat_is_stale(store):
    exp = experiment(store)
    write_holder(store, exp, "other-host", 1, time.time())
    with pytest.raises(LeaseHeld, match="other-host"):
        StudyLease(store, exp, "tiny", "me", stale_after_s=60).acquire()
    write_holder(store, exp, "other-host", 1, time.time() - 120)
    lease = StudyLease(store, exp, "tiny", "me", stale_after_s=60)
    assert lease.acquire().host == "other-host"
    lease.release()


def session_of(store: str, tmp_path: Path, trials: list[Trial]):
    import argparse

    from runners.session import StudySession
    from study.spec import load_spec

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base"}])))
    args = argparse.Namespace(storage=str(tmp_path / "runs"), rerun=False, address=None)
    return StudySession(spec, trials, args, store, ["tiny.yaml"])


def test_a_stop_while_the_preparation_runs_does_not_wait_for_it(store, tmp_path, monkeypatch):
    """Ctrl-C (or a lost lease) while the preparation still runs (counting networks, a store that does not
    answer): the driver goes on to close its runs; it does not wait for the preparation to test evaluation rows."""
    import argparse
    from concurrent.futures import Future

    import runners.scheduler
    import runners.session
    from runners import signals
    from runners.signals import Stopped

    monkeypatch.setattr(signals, "_state", {"signum": None, "deferred": True})
    monkeypatch.setattr(signals, "ignore", lambda: None)  # no process-wide signal handlers in a test
    monkeypatch.setattr(runners.session, "stop_ray", lambda: None)

    def stopped_trials(*args, **kwargs):
        signals.request()
        return {}

    monkeypatch.setattr(runners.scheduler, "run_trials", stopped_trials)
    training, evaluation = a_trial(), replace(a_trial("twice", key="k2"), evaluates="k0")
    session = session_of(store, tmp_path, [training, evaluation])
    session.tracker, session.todo = StudyTracker(store, "tiny", "hash"), [training, evaluation]
    session.args = argparse.Namespace(**vars(session.args), mlflow_wait=1, max_concurrent=None, max_failures=0)
    ended: list = []
    preparing: Future = Future()  # a preparation that does not end while the driver stops

    def run() -> None:
        try:
            ended.append(session.run(preparing))
        except Stopped as stop:
            ended.append(stop)

    running = threading.Thread(target=run, daemon=True)
    running.start()
    running.join(timeout=120)
    preparing.set_exception(RuntimeError("ended by the test"))  # frees the writer's thread
    assert ended, "the stopped driver waits for the preparation"


def test_mlflow_not_answering_when_the_evaluations_start_leaves_them_for_the_next_invocation(
    store, tmp_path, monkeypatch, capsys
):
    """The trainings finished, then MLflow stops answering before the evaluation rows start (their checkpoints
    are looked up in it): the evaluations are not run, said; the driver ends as for any outage, not with a
    traceback. A store error that is no outage still raises."""
    import argparse
    from concurrent.futures import Future

    import runners.scheduler

    phases: list[list[str]] = []

    def run_trials(trials, *args, **kwargs):
        phases.append([t.key for t in trials])
        return {t.key: "finished" for t in trials}

    monkeypatch.setattr(runners.scheduler, "run_trials", run_trials)
    training, evaluation = a_trial(), replace(a_trial("twice", key="k2"), evaluates="k0")
    tracker = StudyTracker(store, "tiny", "hash")
    prepared: Future = Future()
    prepared.set_result(tracker)
    for error, raised in ((ConnectionError("Connection refused"), False), (ValueError("a bug"), True)):
        session = session_of(store, tmp_path, [training, evaluation])
        session.tracker, session.todo = tracker, [training, evaluation]
        session.args = argparse.Namespace(**vars(session.args), mlflow_wait=1, max_concurrent=None, max_failures=0)
        monkeypatch.setattr(tracker, "trial_runs", lambda error=error: (_ for _ in ()).throw(error))
        if raised:
            with pytest.raises(ValueError, match="a bug"):
                session.run(prepared)
            continue
        session.run(prepared)
        assert phases == [["k0"]]  # the evaluation never started, nor a phase of none
        assert "evaluation rows not run: MLflow" in capsys.readouterr().out


def test_a_rerun_with_nothing_to_write_takes_no_lease_and_anything_to_write_does(store, tmp_path):
    """All trials FINISHED here, nothing RUNNING, no journal: reading needs no lease, even while another live
    driver holds it. A run left RUNNING, or a journal entry pending, is a write: the lease is asked for (refused)."""
    from runners.journal import Journal

    tracker = StudyTracker(store, "tiny", "hash")
    done = tracker.open_trial(a_trial(), {}, rerun=False)
    tracker.finish_trial(done, {"top1": 50.0}, None, str(tmp_path))
    write_holder(store, tracker.experiment_id, socket.gethostname(), os.getpid(), time.time())  # alive
    session = session_of(store, tmp_path, [a_trial()])
    session.open()
    assert session.todo == [] and session.lease is None and session.trials[0].state == TrialState.CACHED
    running = tracker.open_trial(a_trial(key="k1"), {}, rerun=False)
    with pytest.raises(LeaseHeld):
        session_of(store, tmp_path, [a_trial()]).open()
    tracker.kill_trial(running, "test")
    Journal(session.journal_path).append({"op": "epoch", "key": "k0", "epoch": 1, "metrics": {}})
    with pytest.raises(LeaseHeld):
        session_of(store, tmp_path, [a_trial()]).open()


def test_a_run_a_stopped_driver_journaled_before_counting_gets_the_counts_of_the_next_plan(store, tmp_path):
    """A driver journaled a trial's ``open`` before its network was counted and stopped before applying it; the
    next invocation replays it with the counts its plan knows (Params and FLOPs in the table for that run)."""
    from runners.journal import Journal, open_entry
    from runners.plan import ModelCounts

    session = session_of(store, tmp_path, [replace(a_trial(), counts=ModelCounts(params=1200, macs=3400))])
    Journal(session.journal_path).append(open_entry(a_trial(), {}, rerun=False))  # no counts
    session.open()
    session.close()
    (run,) = MlflowClient(store).search_runs([session.tracker.experiment_id], "tags.`ean.kind` = 'trial'")
    assert run.data.metrics[S.METRIC_PARAMS] == 1200 and run.data.metrics[S.METRIC_FLOPS] == 3400


def test_a_rerun_run_again_keeps_what_it_trained_again_and_ends_once_all_finished(store, tmp_path, capsys, monkeypatch):
    """``--rerun`` stopped after training ``base`` again (Ctrl-C, a dead driver, a failed trial), then run again
    with the printed command: ``base`` is cached, ``eab`` (whose FINISHED run predates the rerun) still runs.
    Once every trial finished the rerun ends, and the next ``--rerun`` trains both again; a rerun with other
    code begins anew."""
    from runners.session import EXIT_FAILED_TRIALS, EXIT_OK

    def rerun_session():
        session = session_of(store, tmp_path, [a_trial("base", key="kb"), a_trial("eab", key="ke")])
        session.args.rerun = True
        return session

    tracker = StudyTracker(store, "tiny", "hash")
    for row, key in (("base", "kb"), ("eab", "ke")):
        tracker.finish_trial(tracker.open_trial(a_trial(row, key=key), {}, rerun=False), {"top1": 1.0}, None, "")
    first = rerun_session()
    first.open()
    assert [t.state for t in first.trials] == [TrialState.NEW, TrialState.NEW]
    base = first.trials[0]  # trained again, then the driver stops
    first.tracker.finish_trial(first.tracker.open_trial(base, {}, rerun=True), {"top1": 2.0}, None, "")
    assert first.end_rerun(EXIT_FAILED_TRIALS) == EXIT_FAILED_TRIALS
    first.close()

    again = rerun_session()
    again.open()
    assert [(t.state, t.generation) for t in again.trials] == [(TrialState.CACHED, 0), (TrialState.NEW, 1)]
    assert "going on with the --rerun begun at" in capsys.readouterr().out
    eab = again.trials[1]
    again.tracker.finish_trial(again.tracker.open_trial(eab, {}, rerun=True), {"top1": 2.0}, None, "")
    again.end_rerun(EXIT_OK)
    again.close()

    third = rerun_session()
    third.open()
    assert [t.state for t in third.trials] == [TrialState.NEW, TrialState.NEW]  # a new rerun: both again
    third.close()
    with monkeypatch.context() as patch:
        patch.setattr("runners.code_digest.code_digest", lambda: "other code")
        fourth = rerun_session()
        fourth.open()
        assert "going on" not in capsys.readouterr().out
        fourth.close()


def test_a_refused_rerun_is_undone_and_one_it_went_on_with_is_kept(store, tmp_path, monkeypatch, capsys):
    """A ``--rerun`` refused before any trial (trials the local Ray cannot hold) leaves no rerun begun: the next
    ``--rerun`` begins anew (with one left begun, it would count a trial a plain run resumed to its end meanwhile
    as trained again). A refused invocation that went on with an earlier rerun leaves that one as it was."""
    import runners.session
    from runners.session import EXIT_BAD_INPUT, EXIT_FAILED_TRIALS

    monkeypatch.setattr(runners.session, "start_ray", lambda address: None)
    monkeypatch.setattr(runners.session, "_node_resources", lambda: [{"CPU": 2.0}])
    monkeypatch.setattr(runners.session, "use_local_ray_settings", lambda: True)
    monkeypatch.setattr(runners.session.signals, "install", lambda: None)  # no process-wide handlers in a test

    def rerun_session(gpus: int):
        trials = [a_trial("base", key="kb"), a_trial("eab", key="ke")]
        trials = [replace(t, config={**t.config, "resources": {"gpus": gpus}}) for t in trials]
        session = session_of(store, tmp_path, trials)
        session.args.rerun = True
        return session

    tracker = StudyTracker(store, "tiny", "hash")
    for row, key in (("base", "kb"), ("eab", "ke")):
        tracker.finish_trial(tracker.open_trial(a_trial(row, key=key), {}, rerun=False), {"top1": 1.0}, None, "")
    assert rerun_session(gpus=1).execute() == EXIT_BAD_INPUT
    assert "some trials can never start" in capsys.readouterr().err
    again = rerun_session(gpus=0)
    again.open()
    assert "going on" not in capsys.readouterr().out
    base = again.trials[0]  # trained again, then the driver stops
    again.tracker.finish_trial(again.tracker.open_trial(base, {}, rerun=True), {"top1": 2.0}, None, "")
    again.end_rerun(EXIT_FAILED_TRIALS)
    again.close()
    assert rerun_session(gpus=1).execute() == EXIT_BAD_INPUT  # goes on with that rerun, then refused
    capsys.readouterr()
    third = rerun_session(gpus=0)
    third.open()
    assert [t.state for t in third.trials] == [TrialState.CACHED, TrialState.NEW]
    assert "going on with the --rerun begun at" in capsys.readouterr().out
    third.close()


def test_a_rerun_keeps_a_trial_it_resumed_to_its_end_and_reruns_of_other_rows_end_apart(store, tmp_path, capsys):
    """A trial whose run a driver left KILLED before the rerun is resumed by it (its run keeps its first start)
    and finished: run again, the rerun keeps it. A rerun of other rows (``--rows``) that finishes ends only its
    own: the first one, run again, still keeps what it trained."""
    from runners.session import EXIT_FAILED_TRIALS, EXIT_OK

    def rerun_session(*rows: str):
        session = session_of(store, tmp_path, [a_trial(row, key=f"k{row}") for row in rows])
        session.args.rerun = True
        return session

    tracker = StudyTracker(store, "tiny", "hash")
    killed = tracker.open_trial(a_trial("base", key="kbase"), {}, rerun=False)
    tracker.client.set_terminated(killed, S.STATUS_KILLED)
    for row in ("b2", "eab"):
        tracker.finish_trial(tracker.open_trial(a_trial(row, key=f"k{row}"), {}, rerun=False), {"top1": 1.0}, None, "")
    time.sleep(0.01)

    first = rerun_session("base", "b2")  # --rerun --rows base,b2
    first.open()
    assert [t.state for t in first.trials] == [TrialState.RESUME, TrialState.NEW]
    base = first.trials[0]
    first.tracker.finish_trial(first.tracker.open_trial(base, {}, rerun=True), {"top1": 2.0}, None, "")
    first.end_rerun(EXIT_FAILED_TRIALS)  # b2 failed
    first.close()

    other = rerun_session("eab")  # --rerun --rows eab, to its end
    other.open()
    other.tracker.finish_trial(other.tracker.open_trial(other.trials[0], {}, rerun=True), {"top1": 2.0}, None, "")
    other.end_rerun(EXIT_OK)
    other.close()

    again = rerun_session("base", "b2")
    again.open()
    assert [t.state for t in again.trials] == [TrialState.CACHED, TrialState.NEW]
    assert "going on with the --rerun begun at" in capsys.readouterr().out
    again.close()


def test_an_evaluation_tests_each_checkpoint_in_a_folder_of_its_own(tmp_path):
    """An evaluation interrupted while testing a training that was trained again since resumes in another folder
    (its copy of the old checkpoint and any result of it stay behind); the same checkpoint, the same folder."""
    from runners.scheduler import workdir_of

    evaluation = a_trial("base_2clips", key="ke")
    evaluation.evaluates = "kt"
    folders = []
    for checkpoint in ("/runs/tiny/kt/checkpoints/last.pt", "/runs/tiny/kt-rerun1/checkpoints/last.pt"):
        evaluation.checkpoint = checkpoint
        folders.append(workdir_of(tmp_path, evaluation))
    assert folders[0] != folders[1] and folders[0].name.startswith("ke-ckpt")
    evaluation.checkpoint = "/runs/tiny/kt/checkpoints/last.pt"
    assert workdir_of(tmp_path, evaluation) == folders[0]
    assert workdir_of(tmp_path, a_trial(key="kt")).name == "kt"  # a training's folder is its key


def test_a_writer_back_from_an_outage_applies_nothing_once_the_lease_is_lost(store, tmp_path):
    """The store did not answer for long enough that another driver took the study over: when it answers again,
    the writer reads the lease before applying its backlog, and applies nothing (the entries stay journaled)."""
    from runners.journal import BufferedTracker, Journal

    tracker = StudyTracker(store, "tiny", "hash")
    run_id = tracker.open_trial(a_trial(), {}, rerun=False)
    real, calls = tracker.log_metrics, []

    def down_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise ConnectionError("Connection refused")
        return real(*args, **kwargs)

    tracker.log_metrics = down_once
    asked = []

    def holds() -> bool:
        asked.append(True)
        writer.fence()  # what the lease's on_lost does in a session
        return False

    journal = Journal(tmp_path / "journal.jsonl")
    writer = BufferedTracker(tracker, journal, S.EPOCH_LOGGED, lambda line: None, retry_s=0.05, holds_lease=holds)
    writer.log_epoch("k0", EpochReport(1, {"train_loss": 1.0}))
    deadline = time.time() + 30
    while not asked and time.time() < deadline:
        time.sleep(0.05)
    writer.close()
    assert asked and len(calls) == 1, "after the outage the lease was read, and nothing applied"
    assert MlflowClient(store).get_metric_history(run_id, "train_loss") == []
    assert [e["op"] for e in journal.pending()] == ["epoch"]


def run_cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runners.run", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_an_unreachable_tracking_server_fails_in_seconds_naming_it(tmp_path):
    spec = write_yaml(tmp_path / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base", "overrides": []}]))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    # MLflow's client alone retries a refused connection for over four minutes: a run that ends before the
    # subprocess timeout asked the server once (the time itself is measured, not asserted: see the README)
    result = run_cli(tmp_path, str(spec), "--mlflow-uri", uri, "--storage", str(tmp_path / "runs"), timeout=90)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and uri in errors[0] and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root``: size, modification time and content hash."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("store_exists", [False, True])
def test_a_dry_run_writes_nothing_anywhere(tmp_path, store_exists):
    spec = write_yaml(tmp_path / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base", "overrides": []}]))
    if store_exists:  # a store with another study in it
        StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "other", "hash")
    before = tree(tmp_path)
    result = run_cli(tmp_path, *cli_args(tmp_path, spec, "--dry-run"))
    assert result.returncode == 0, result.stderr
    assert "tiny/base/seed0" in result.stdout
    assert tree(tmp_path) == before
    if store_exists:
        assert MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_experiment_by_name("tiny") is None


def test_journal_writes_applied_twice_change_nothing(store, tmp_path):
    """A driver that dies after applying writes but before recording it: the next one applies them again."""
    from runners.journal import Journal, open_entry, replay

    tracker = StudyTracker(store, "tiny", "hash")
    journal = Journal(tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl")
    history = [{"epoch": e, "train_loss": float(e)} for e in (1, 2)]
    final = {"top1": 50.0, "top5": 90.0, "test_loss": 1.0, "history": history}
    journal.append(open_entry(a_trial(), {S.TAG_DATASET: "synthetic"}, rerun=False))
    journal.append({"op": "epoch", "key": "k0", "epoch": 1, "metrics": {"train_loss": 1.0}})
    journal.append({"op": "finish", "key": "k0", "final": final, "workdir": str(tmp_path)})
    entries = journal.path.read_text()
    assert replay(tracker, journal, ("train_loss",)) == 3
    journal.path.write_text(entries)  # as if the applied marker had never been written
    assert replay(StudyTracker(store, "tiny", "hash"), journal, ("train_loss",)) == 3
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    assert run.info.status == S.STATUS_FINISHED
    client = MlflowClient(store)
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss")) == [1, 2]
    assert len(client.get_metric_history(run.info.run_id, "top1")) == 1
    assert not journal.path.exists()


def test_an_opening_cut_short_after_the_run_was_created_is_completed_when_applied_again(store, tmp_path, monkeypatch):
    """The store fails right after the run is created (the driver might as well have died there): the entry
    applied again completes that run (params, config.yaml, data inputs, Params/FLOPs) and makes no second one."""
    from runners.journal import Journal, open_entry, replay
    from runners.trials import ModelCounts

    tracker = StudyTracker(store, "tiny", "hash")
    journal = Journal(tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl")
    trial = replace(a_trial(), counts=ModelCounts(params=1200, macs=3400))
    journal.append(open_entry(trial, {S.TAG_DATASET: "synthetic"}, rerun=False))
    entries = journal.path.read_text()
    real_log_batch = tracker.client.log_batch

    def locked_once(*args, **kwargs):
        monkeypatch.setattr(tracker.client, "log_batch", real_log_batch)
        raise RuntimeError("sqlite3.OperationalError: database is locked")

    monkeypatch.setattr(tracker.client, "log_batch", locked_once)
    with pytest.raises(RuntimeError, match="locked"):
        replay(tracker, journal, ("train_loss",))
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    assert not run.data.params  # created with its tags, then cut short
    assert replay(StudyTracker(store, "tiny", "hash"), journal, ("train_loss",)) == 1
    client = MlflowClient(store)
    (run,) = client.search_runs([tracker.experiment_id])
    assert run.data.params == {"trainer.epochs": "3"}
    assert run.data.metrics == {S.METRIC_PARAMS: 1200.0, S.METRIC_FLOPS: 3400.0}
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == [S.ARTIFACT_CONFIG]
    journal.path.write_text(entries)  # applied once more, as if the applied marker had never been written
    assert replay(StudyTracker(store, "tiny", "hash"), journal, ("train_loss",)) == 1
    (again,) = client.search_runs([tracker.experiment_id])
    assert again.info.run_id == run.info.run_id and again.data.params == run.data.params
    assert len(client.get_metric_history(run.info.run_id, S.METRIC_PARAMS)) == 1


@pytest.mark.parametrize("cut", ['"metrics": {"train_loss": 0.5}', '"epoch": 2', '{"seq'])
def test_a_torn_journal_line_is_left_out_and_the_next_write_starts_a_line_of_its_own(tmp_path, caplog, cut):
    """A write cut short (a full disk, a killed driver), even right after an inner ``}``: the entries before it
    still replay, the torn line is named in a warning, and the next entry is written on a line of its own."""
    from runners.journal import Journal, epoch_entry

    path = tmp_path / "_mlflow_journal.jsonl"
    journal = Journal(path)
    journal.append(epoch_entry("k0", EpochReport(1, {"train_loss": 1.0})))
    whole = json.dumps({"seq": 2, "op": "epoch", "key": "k0", "epoch": 2, "metrics": {"train_loss": 0.5}, "x": 1})
    with path.open("a") as f:
        f.write(whole[: whole.index(cut) + len(cut)])  # no newline: torn
    journal = Journal(path)
    assert [e["seq"] for e in journal.pending()] == [1]
    assert "line 2: not a whole journal entry" in caplog.text
    journal.append(epoch_entry("k0", EpochReport(2, {"train_loss": 0.5})))
    reread = Journal(path).pending()
    assert [(e["seq"], e["epoch"]) for e in reread] == [(1, 1), (2, 2)]
    assert len(path.read_text().splitlines()) == 3


def test_a_journal_of_an_older_version_still_replays(store, tmp_path):
    """Journals written before ``ModelCounts`` hold the counts under "profile" (params and flops): they replay,
    and the run gets its Params and FLOPs."""
    from runners.journal import Journal, replay

    old_open = {
        "seq": 1,
        "op": "open",
        "key": "k0",
        "row": "base",
        "label": "Base",
        "seed": 0,
        "config": {"trainer": {"epochs": 3}},
        "data_fingerprint": "fp",
        "state": "new",
        "run_id": None,
        "profile": {"params": 1200, "flops": 3400},
        "tags": {S.TAG_DATASET: "synthetic"},
        "rerun": False,
        "entry_id": "0" * 32,
    }
    old_epoch = {"seq": 2, "op": "epoch", "key": "k0", "epoch": 1, "metrics": {"train_loss": 1.5}}
    path = tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in (old_open, old_epoch)))
    tracker = StudyTracker(store, "tiny", "hash")
    assert replay(tracker, Journal(path), ("train_loss",)) == 2
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    assert run.data.metrics == {S.METRIC_PARAMS: 1200, S.METRIC_FLOPS: 3400, "train_loss": 1.5}
    assert run.data.tags[S.TAG_TRIAL_KEY] == "k0" and not path.exists()


def _journal_of_a_finished_trial(tmp_path: Path, final: dict) -> Path:
    """The journal of a 2-epoch trial that finished: its run's opening, its epochs (with val_loss), its finish."""
    from runners.journal import Journal, open_entry

    journal = Journal(tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl")
    journal.append(open_entry(a_trial(), {S.TAG_DATASET: "synthetic"}, rerun=False))
    for epoch, val_loss in ((1, 0.9), (2, 0.8)):
        metrics = {"train_loss": 1.0 / epoch, "val_loss": val_loss}
        journal.append({"op": "epoch", "key": "k0", "epoch": epoch, "metrics": metrics})
    journal.append({"op": "finish", "key": "k0", "final": final, "workdir": str(tmp_path)})
    return journal.path


@pytest.mark.parametrize("loss_key", ["test_loss", "val_loss"], ids=["current", "journaled-before-test_loss"])
def test_the_final_loss_is_test_loss_and_the_val_loss_curve_holds_only_epochs(store, tmp_path, loss_key):
    """The final evaluation's loss (under the row's protocol) is ``test_loss``, one value; ``val_loss`` keeps one
    point per evaluated epoch, and the runs table's value is the last epoch's. A finish journaled (or a result
    file written) before ``test_loss`` held the final loss under ``val_loss``: it is logged as ``test_loss``."""
    from reports.collect import collect_runs
    from runners.journal import Journal, replay

    final = {"top1": 50.0, "top5": 90.0, loss_key: 1.3, "num_videos": 40, "history": []}
    tracker = StudyTracker(store, "tiny", "hash")
    assert replay(tracker, Journal(_journal_of_a_finished_trial(tmp_path, final)), S.EPOCH_LOGGED) == 4
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id])
    client = MlflowClient(store)
    val_loss = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_loss")]
    test_loss = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, S.METRIC_TEST_LOSS)]
    assert sorted(val_loss) == [(1, 0.9), (2, 0.8)] and test_loss == [(0, 1.3)]
    (row,) = collect_runs("tiny", store).trials.to_dict("records")
    assert row[S.METRIC_TEST_LOSS] == 1.3 and row["top1"] == 50.0 and row[S.METRIC_TEST_VIDEOS] == 40


def _finished_with_checkpoint(tracker: StudyTracker, trial: Trial, folder: Path, tags: dict[str, str]) -> str:
    """A FINISHED run of ``trial`` whose working folder ``folder`` holds a final checkpoint; returns its id."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"weights")
    run_id = tracker.open_trial(trial, tags, rerun=False)
    tracker.finish_trial(run_id, {"top1": 50.0}, None, str(folder))
    return run_id


def _trained_and_evaluated(tracker, tmp_path: Path):
    """Training ``kt`` FINISHED with its checkpoint, then its evaluation ``ke`` FINISHED testing it: (the two
    trials, the training's run id, the evaluation's)."""
    training, evaluation = a_trial("base", key="kt"), replace(a_trial("base_2clips", key="ke"), evaluates="kt")
    first = _finished_with_checkpoint(tracker, training, tmp_path / "kt", {})
    checkpoint = tracker.client.get_run(first).data.tags[S.TAG_CHECKPOINT]
    evaluated = _finished_with_checkpoint(
        tracker, evaluation, tmp_path / "ke", {S.TAG_EVALUATES: "kt", S.TAG_EVALUATED_CHECKPOINT: checkpoint}
    )
    return training, evaluation, first, evaluated


def test_an_evaluation_of_a_checkpoint_trained_again_since_is_run_again(store, tmp_path):
    """``--rerun --rows base`` trained base again (another checkpoint); its evaluation row's FINISHED run tested
    the old one: the next plan runs the evaluation again (a new working folder, the old run to supersede)
    instead of calling it cached. An evaluation of the current checkpoint stays cached; a run from before the
    ``ean.evaluated_checkpoint`` tag is judged by its start against the training's end."""
    tracker = StudyTracker(store, "tiny", "hash")
    training, evaluation, first, evaluated = _trained_and_evaluated(tracker, tmp_path)
    checkpoint = tracker.client.get_run(first).data.tags[S.TAG_CHECKPOINT]
    tracker.mark_cached([training, evaluation], rerun=False)
    assert (evaluation.state, evaluation.run_id, evaluation.generation) == (TrialState.CACHED, evaluated, 0)
    tracker.client.delete_tag(evaluated, S.TAG_EVALUATED_CHECKPOINT)  # a run older than the tag
    tracker.mark_cached([training, evaluation], rerun=False)
    assert evaluation.state == TrialState.CACHED  # it started after its training ended
    tracker.client.set_tag(evaluated, S.TAG_EVALUATED_CHECKPOINT, checkpoint)

    again = a_trial("base", key="kt")  # --rerun --rows base: trained again, into another folder
    again.state, again.run_id = TrialState.NEW, first
    _finished_with_checkpoint(tracker, again, tmp_path / "kt-rerun1", {})
    training, evaluation = a_trial("base", key="kt"), a_trial("base_2clips", key="ke")
    evaluation.evaluates = "kt"
    tracker.mark_cached([training, evaluation], rerun=False)
    assert training.state == TrialState.CACHED
    assert (evaluation.state, evaluation.run_id, evaluation.generation) == (TrialState.NEW, evaluated, 1)

    tracker.client.delete_tag(evaluated, S.TAG_EVALUATED_CHECKPOINT)  # a run older than the tag
    tracker.mark_cached([training, evaluation], rerun=False)
    assert evaluation.state == TrialState.NEW  # it started before the training it would report ended


def test_an_evaluation_of_a_training_run_again_in_the_same_folder_is_run_again(store, tmp_path):
    """The training's run and folder deleted by hand, then trained again: the same checkpoint path, new weights.
    Its evaluation's FINISHED run ended before that training ended: not cached. A reused (copied) run's times
    are the copy's: the path alone decides."""
    tracker = StudyTracker(store, "tiny", "hash")
    _, _, first, evaluated = _trained_and_evaluated(tracker, tmp_path)
    tracker.client.delete_run(first)  # by hand, with its folder
    shutil.rmtree(tmp_path / "kt")
    time.sleep(0.01)
    _finished_with_checkpoint(tracker, a_trial("base", key="kt"), tmp_path / "kt", {})
    training, evaluation = a_trial("base", key="kt"), a_trial("base_2clips", key="ke")
    evaluation.evaluates = "kt"
    tracker.mark_cached([training, evaluation], rerun=False)
    assert training.state == TrialState.CACHED and evaluation.state == TrialState.NEW
    tracker.client.set_tag(evaluated, S.TAG_REUSED_FROM, "a source run")
    tracker.mark_cached([training, evaluation], rerun=False)
    assert (evaluation.state, evaluation.run_id) == (TrialState.CACHED, evaluated)


def test_an_evaluation_resumed_after_its_training_was_trained_again_stays_cached(store, tmp_path):
    """The evaluation was stopped, its training trained again (``--rerun``, another folder), then the evaluation
    resumed on its first run (which keeps its first start) and finished testing the new checkpoint: cached, not
    evaluated once more."""
    tracker = StudyTracker(store, "tiny", "hash")
    evaluation = replace(a_trial("base_2clips", key="ke"), evaluates="kt")
    stopped = tracker.open_trial(evaluation, {S.TAG_EVALUATES: "kt"}, rerun=False)
    tracker.kill_trial(stopped, "stopped")
    time.sleep(0.01)
    first = _finished_with_checkpoint(tracker, a_trial("base", key="kt"), tmp_path / "kt", {})
    checkpoint = tracker.client.get_run(first).data.tags[S.TAG_CHECKPOINT]
    resumed = replace(evaluation, state=TrialState.RESUME, run_id=stopped)
    tags = {S.TAG_EVALUATES: "kt", S.TAG_EVALUATED_CHECKPOINT: checkpoint}
    assert tracker.open_trial(resumed, tags, rerun=False) == stopped
    tracker.finish_trial(stopped, {"top1": 50.0}, None, str(tmp_path / "ke"))
    training, again = a_trial("base", key="kt"), replace(a_trial("base_2clips", key="ke"), evaluates="kt")
    tracker.mark_cached([training, again], rerun=False)
    assert (again.state, again.run_id) == (TrialState.CACHED, stopped)


def test_a_rerun_leaves_the_old_run_finished_and_superseded(store, tmp_path):
    """``--rerun`` opens a new run for the trial key; the FINISHED run stays FINISHED (its result stands while
    the new one trains) and, once the new run finishes, carries ``ean.superseded_by``. The journal's writes,
    applied twice, change nothing, and the report takes the new run without a duplicate note."""
    from reports.collect import collect_runs
    from reports.select import describe_duplicates, select_runs
    from runners.journal import Applier, Journal, epoch_entry, open_entry, replay
    from study.spec import load_spec

    tags = {S.TAG_DATASET: "synthetic", S.TAG_PROTOCOL: "1x1", S.TAG_CODE_VERSION: "0.3.0"}
    tracker = StudyTracker(store, "tiny", "hash")
    old = tracker.open_trial(a_trial(), tags, rerun=False)
    tracker.log_epoch(old, EpochReport(1, {"train_loss": 2.0}))
    tracker.finish_trial(old, {"top1": 40.0, "top5": 80.0}, None, str(tmp_path))

    again = StudyTracker(store, "tiny", "hash")  # python -m runners.run tiny --rerun
    trial = a_trial()
    again.mark_cached([trial], rerun=True)
    assert (trial.state, trial.run_id) == (TrialState.NEW, old)
    journal = Journal(tmp_path / "runs" / "tiny" / "_mlflow_journal.jsonl")
    opening = journal.append(open_entry(trial, tags, rerun=True))
    Applier(again, S.EPOCH_LOGGED).apply(opening)
    client = MlflowClient(store)
    assert client.get_run(old).info.status == S.STATUS_FINISHED  # still the trial's result while it trains
    assert S.TAG_SUPERSEDED_BY not in client.get_run(old).data.tags
    journal.append(epoch_entry("k0", EpochReport(1, {"train_loss": 1.0, S.METRIC_EPOCH_TIME: 2.5})))
    final = {"top1": 60.0, "top5": 90.0, "history": [{"epoch": 1, "train_loss": 1.0}]}
    journal.append({"op": "finish", "key": "k0", "final": final, "workdir": str(tmp_path)})
    entries = journal.path.read_text()
    replay(again, journal, S.EPOCH_LOGGED)
    journal.path.write_text(entries)  # as if the driver died before recording that it applied them
    replay(StudyTracker(store, "tiny", "hash"), journal, S.EPOCH_LOGGED)

    runs = sorted(client.search_runs([tracker.experiment_id]), key=lambda r: r.info.start_time)
    assert len(runs) == 2 and runs[0].info.run_id == old
    new = runs[1].info.run_id
    assert [r.info.status for r in runs] == [S.STATUS_FINISHED, S.STATUS_FINISHED]
    assert runs[0].data.tags[S.TAG_SUPERSEDED_BY] == new and S.TAG_SUPERSEDED_BY not in runs[1].data.tags
    assert runs[1].data.metrics["top1"] == 60.0 and len(client.get_metric_history(new, "train_loss")) == 1
    cached = a_trial()
    StudyTracker(store, "tiny", "hash").mark_cached([cached], rerun=False)
    assert (cached.state, cached.run_id) == (TrialState.CACHED, new)

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base"}])))
    selection = select_runs(spec, collect_runs("tiny", store).trials)
    assert list(selection.chosen["run_id"]) == [new]
    assert selection.duplicates == () and selection.excluded.empty
    assert describe_duplicates(selection, {"base": "Base"}) == []


def test_each_epochs_wall_time_is_logged(store):
    """``ean.train.fit``'s epochs carry ``epoch_time_s``: logged per epoch, from Tune's results and from the
    trial's history alike."""
    report = EpochReport.of_result({"epoch": 1.0, "train_loss": 1.0, S.METRIC_EPOCH_TIME: 3.5, "time_this_iter_s": 4})
    assert report.metrics == {"train_loss": 1.0, S.METRIC_EPOCH_TIME: 3.5}
    tracker = StudyTracker(store, "tiny", "hash")
    run_id = tracker.open_trial(a_trial(), {}, rerun=False)
    tracker.log_epoch(run_id, report)
    history = [{"epoch": e, "train_loss": 1.0, S.METRIC_EPOCH_TIME: 3.0 + e} for e in (1, 2)]
    assert tracker.backfill(run_id, history, S.EPOCH_LOGGED) == [2]
    times = MlflowClient(store).get_metric_history(run_id, S.METRIC_EPOCH_TIME)
    assert sorted((m.step, m.value) for m in times) == [(1, 3.5), (2, 5.0)]


ENSEMBLE_ROWS = [
    {"id": "a", "label": "A"},
    {"id": "b", "label": "B"},
    {"id": "en", "label": "En", "ensemble": ["a", "b"]},
]


def _finished_member(tracker: StudyTracker, folder: Path, row: str, key: str) -> str:
    """A FINISHED run of trial ``key`` (row ``row``, seed 0) with a scores file of 2 videos; returns its id."""
    import numpy as np

    from ean.train.scores import write_scores

    scores = write_scores(folder / "val_scores.npz", np.eye(2, dtype=np.float32), [0, 1], [0, 1], ["x", "y"])
    run_id = tracker.open_trial(a_trial(row, key=key), {}, rerun=False)
    tracker.finish_trial(run_id, {"top1": 100.0}, str(scores), str(folder))
    return run_id


def test_an_ensemble_waits_for_its_planned_members_and_takes_no_other_keys_run(store, tmp_path):
    """A FINISHED run of the same row and seed under another trial key (here: what an older code version left)
    is not a member: the ensemble waits for the planned trial, then averages it."""
    from runners.ensembles import cell_keys, run_ensembles
    from study.spec import load_spec

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec(ENSEMBLE_ROWS)))
    tracker = StudyTracker(store, "tiny", "hash")
    a = _finished_member(tracker, tmp_path / "a", "a", "ka")
    _finished_member(tracker, tmp_path / "b-old", "b", "kb-older-code")
    planned = {("a", "", 0): "ka", ("b", "", 0): "kb"}
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "waiting"}
    b = _finished_member(tracker, tmp_path / "b", "b", "kb")
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "finished"}
    (run,) = MlflowClient(store).search_runs([tracker.experiment_id], f"tags.`{S.TAG_ROW}` = 'en'")
    assert set(run.data.tags[S.TAG_ENSEMBLE_OF].split(",")) == {a, b}
    assert run.data.metrics[S.METRIC_TEST_VIDEOS] == 2  # the videos its averaged scores cover
    assert run.data.tags[S.TAG_TRIAL_KEY] == cell_keys(spec, planned)[("en", "", 0)]  # the key the table asks for


def test_ensembles_use_the_current_member_runs_and_the_same_members_are_averaged_once(store, tmp_path):
    """An ensemble averages each member's newest run that no rerun superseded, once: asked again (a ``--rerun``
    going on included) with the same member runs, the cell is cached."""
    from runners.ensembles import run_ensembles
    from study.spec import load_spec

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec(ENSEMBLE_ROWS)))
    tracker = StudyTracker(store, "tiny", "hash")

    def trained(row: str, name: str) -> str:
        return _finished_member(tracker, tmp_path / name, row, f"k{row}")

    old_a, b = trained("a", "a0"), trained("b", "b0")
    new_a = trained("a", "a1")  # a --rerun of a: supersedes old_a
    client = MlflowClient(store)
    assert client.get_run(old_a).data.tags[S.TAG_SUPERSEDED_BY] == new_a

    def ensemble_runs() -> list:
        runs = client.search_runs([tracker.experiment_id], f"tags.`{S.TAG_ROW}` = 'en'")
        return sorted(runs, key=lambda r: r.info.start_time)

    planned = {("a", "", 0): "ka", ("b", "", 0): "kb"}
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "finished"}
    (first,) = ensemble_runs()
    assert set(first.data.tags[S.TAG_ENSEMBLE_OF].split(",")) == {new_a, b}
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "cached"}  # the same members: one run
    assert len(ensemble_runs()) == 1


def test_an_ensemble_is_averaged_again_when_a_member_is_trained_again(store, tmp_path):
    """A cached ensemble run averaged the members' runs of its time: once a member's row is trained again
    (``--rerun`` of that row alone), the next invocation averages the new run and supersedes the old ensemble."""
    from runners.ensembles import run_ensembles
    from study.spec import load_spec

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec(ENSEMBLE_ROWS)))
    tracker = StudyTracker(store, "tiny", "hash")
    planned = {("a", "", 0): "ka", ("b", "", 0): "kb"}
    _finished_member(tracker, tmp_path / "a0", "a", "ka")
    b = _finished_member(tracker, tmp_path / "b0", "b", "kb")
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "finished"}
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "cached"}
    new_a = _finished_member(tracker, tmp_path / "a1", "a", "ka")  # the row a trained again
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "finished"}
    runs = MlflowClient(store).search_runs([tracker.experiment_id], f"tags.`{S.TAG_ROW}` = 'en'")
    old, new = sorted(runs, key=lambda r: r.info.start_time)
    assert set(new.data.tags[S.TAG_ENSEMBLE_OF].split(",")) == {new_a, b}
    assert old.data.tags[S.TAG_SUPERSEDED_BY] == new.info.run_id
    assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "cached"}


@pytest.mark.parametrize("cut", ["reuse", "ensemble"])
def test_a_copy_or_average_cut_short_is_made_again_as_its_keys_only_run(store, tmp_path, monkeypatch, cut):
    """The driver stops (Ctrl-C) while it copies a reused trial's run or logs an ensemble's average: the next
    invocation's reconcile deletes the run left RUNNING, and the copy or average made again is the key's only run
    in the study (no KILLED duplicate beside it)."""
    import runners.tracking
    from runners.ensembles import cell_keys, run_ensembles
    from study.spec import load_spec

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec(ENSEMBLE_ROWS)))
    planned = {("a", "", 0): "ka", ("b", "", 0): "kb"}
    tracker = StudyTracker(store, "tiny", "hash")
    elsewhere = StudyTracker(store, "other", "hash")
    _finished_member(elsewhere if cut == "reuse" else tracker, tmp_path / "a", "a", "ka")
    _finished_member(tracker, tmp_path / "b", "b", "kb")
    client = MlflowClient(store)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def make(tracker: StudyTracker) -> None:
        if cut == "reuse":
            trial = a_trial("a", key="ka")
            tracker.mark_cached([trial], rerun=False)
            assert trial.state == TrialState.REUSED
            tracker.reuse_trial(trial, {})
        else:
            assert run_ensembles(spec, planned, tracker) == {"tiny/en/seed0": "finished"}

    key = "ka" if cut == "reuse" else cell_keys(spec, planned)[("en", "", 0)]
    monkeypatch.setattr(runners.tracking, "copy_artifacts", interrupted)
    monkeypatch.setattr(tracker.client, "log_artifact", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make(tracker)
    monkeypatch.undo()
    again = StudyTracker(store, "tiny", "hash")
    assert len(again.reconcile()) == 1
    make(again)
    runs = client.search_runs([tracker.experiment_id], f"tags.`{S.TAG_TRIAL_KEY}` = '{key}'")
    assert [r.info.status for r in runs] == [S.STATUS_FINISHED]


def test_an_ensemble_cell_that_cannot_be_averaged_is_named_and_the_others_go_on(store, tmp_path):
    """Seed 0's member b scored another set of videos, seed 1's member a has no score file: each cell fails
    naming the member runs (not a temporary path); seed 2's cell is averaged; nothing raises."""
    import numpy as np

    from ean.train.scores import write_scores
    from runners.ensembles import run_ensembles
    from study.spec import load_spec

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec(ENSEMBLE_ROWS, seeds=(0, 1, 2))))
    tracker = StudyTracker(store, "tiny", "hash")
    ids = {}
    for seed in (0, 1, 2):
        for row in "ab":
            folder = tmp_path / f"{row}{seed}"
            videos = [0] if (row, seed) == ("b", 0) else [0, 1]
            scores = write_scores(
                folder / "val_scores.npz", np.eye(2, dtype=np.float32)[videos], videos, videos, ["x", "y"]
            )
            trial = a_trial(row, seed=seed, key=f"k{row}{seed}")
            ids[row, seed] = tracker.open_trial(trial, {}, rerun=False)
            tracker.finish_trial(
                ids[row, seed], {"top1": 100.0}, None if (row, seed) == ("a", 1) else str(scores), str(folder)
            )
    planned = {(row, "", seed): f"k{row}{seed}" for row in "ab" for seed in (0, 1, 2)}
    outcome = run_ensembles(spec, planned, tracker)
    assert outcome["tiny/en/seed2"] == "finished"
    assert outcome["tiny/en/seed0"].startswith("failed: ") and f"row b (run {ids['b', 0]})" in outcome["tiny/en/seed0"]
    assert (
        outcome["tiny/en/seed1"]
        == f"failed: row a, run {ids['a', 1]} has no {S.ARTIFACT_SCORES} in MLflow (RESOURCE_DOES_NOT_EXIST)"
    )
    assert "/tmp" not in outcome["tiny/en/seed0"]


def test_an_evaluation_another_study_made_of_another_checkpoint_is_not_reused(store, tmp_path):
    """Study ``other`` evaluated its training of key kt; this study trained kt itself (another checkpoint): the
    evaluation is run here, not reused. Once this study uses other's training (reused), other's evaluation of it
    is reused."""
    theirs = StudyTracker(store, "other", "hash")
    training, evaluation = a_trial("base", key="kt"), a_trial("base_2clips", key="ke")
    evaluation.evaluates = "kt"
    source = _finished_with_checkpoint(theirs, training, tmp_path / "other-kt", {})
    checkpoint = theirs.client.get_run(source).data.tags[S.TAG_CHECKPOINT]
    _finished_with_checkpoint(
        theirs, evaluation, tmp_path / "other-ke", {S.TAG_EVALUATES: "kt", S.TAG_EVALUATED_CHECKPOINT: checkpoint}
    )
    ours = StudyTracker(store, "tiny", "hash")
    training, evaluation = a_trial("base", key="kt"), a_trial("base_2clips", key="ke")
    evaluation.evaluates = "kt"
    ours.mark_cached([training, evaluation], rerun=False)
    assert (training.state, evaluation.state) == (TrialState.REUSED, TrialState.REUSED)  # both from other

    _finished_with_checkpoint(ours, training, tmp_path / "tiny-kt", {})  # trained here: another checkpoint
    training, evaluation = a_trial("base", key="kt"), a_trial("base_2clips", key="ke")
    evaluation.evaluates = "kt"
    ours.mark_cached([training, evaluation], rerun=False)
    assert (training.state, evaluation.state) == (TrialState.CACHED, TrialState.NEW)


def test_the_runs_to_reuse_come_originals_first_each_newest_first(store, tmp_path, monkeypatch):
    """Key k trained by two studies and copied by a third: both originals, the newest first, then the copy, also
    when each study's runs come from a search of their own (MLflow searches 100 experiments at a time) met in an
    order other than the runs' (here the search meets the oldest run first)."""
    import time

    from runners import reuse
    from runners.reuse import finished_elsewhere

    monkeypatch.setattr(reuse, "EXPERIMENTS_PER_SEARCH", 1)
    trackers = {name: StudyTracker(store, name, "hash") for name in ("a", "b", "c")}
    client = trackers["a"].client
    met = [e.name for e in client.search_experiments(max_results=50000) if e.name in trackers]
    ids = {}
    for name in met:
        tags = {S.TAG_REUSED_FROM: "origin"} if name == "b" else {}
        ids[name] = _finished_with_checkpoint(trackers[name], a_trial(key="k"), tmp_path / name, tags)
        time.sleep(0.01)
    originals = [name for name in reversed(met) if name != "b"]  # made last = newest
    found = finished_elsewhere(client, "tiny", {"k", "other"})
    assert list(found) == ["k"] and [r.info.run_id for r in found["k"]] == [ids[n] for n in [*originals, "b"]]


def _evaluation_pair() -> tuple[Trial, Trial]:
    training, evaluation = a_trial("base", key="kt"), a_trial("base_2clips", key="ke")
    evaluation.evaluates = "kt"
    return training, evaluation


def _checkpoint(tracker: StudyTracker, run_id: str) -> str:
    return tracker.client.get_run(run_id).data.tags[S.TAG_CHECKPOINT]


def test_an_evaluation_is_reused_from_the_study_whose_training_is_reused(store, tmp_path):
    """Studies c and a each trained key kt (a last: its run is the one reused) and evaluated their own checkpoint
    (c last); study b reused a's evaluation. This study reuses a's training and a's evaluation: not c's, the newest
    evaluation, which tested another checkpoint, and not b's copy (an original comes first)."""
    import time

    c, a, b = (StudyTracker(store, name, "hash") for name in ("c", "a", "b"))
    trained = {}
    for name, tracker in (("c", c), ("a", a)):
        trained[name] = _finished_with_checkpoint(tracker, _evaluation_pair()[0], tmp_path / f"{name}-kt", {})
        time.sleep(0.01)
    evaluated = {}
    for name, tracker in (("a", a), ("c", c)):
        tags = {S.TAG_EVALUATES: "kt", S.TAG_EVALUATED_CHECKPOINT: _checkpoint(tracker, trained[name])}
        evaluated[name] = _finished_with_checkpoint(tracker, _evaluation_pair()[1], tmp_path / f"{name}-ke", tags)
        time.sleep(0.01)
    copy = {S.TAG_EVALUATES: "kt", S.TAG_EVALUATED_CHECKPOINT: _checkpoint(a, trained["a"])}
    _finished_with_checkpoint(b, _evaluation_pair()[1], tmp_path / "b-ke", {**copy, S.TAG_REUSED_FROM: evaluated["a"]})
    training, evaluation = _evaluation_pair()
    StudyTracker(store, "tiny", "hash").mark_cached([training, evaluation], rerun=False)
    assert (training.state, training.run_id) == (TrialState.REUSED, trained["a"])
    assert (evaluation.state, evaluation.run_id) == (TrialState.REUSED, evaluated["a"])


def test_an_older_evaluation_without_its_checkpoint_named_is_not_reused_for_another_studys_training(store, tmp_path):
    """An evaluation run from before ``ean.evaluated_checkpoint`` is judged by its start against the training's end,
    which says nothing across studies: past the newest candidate, such a run is not reused. Study c trained kt,
    then a trained it (the training reused here); c evaluated ke untagged after that; f evaluated ke last, of
    another checkpoint. The evaluation is run again here."""
    import time

    c, a, f = (StudyTracker(store, name, "hash") for name in ("c", "a", "f"))
    trained = {}
    for name, tracker in (("c", c), ("a", a)):
        trained[name] = _finished_with_checkpoint(tracker, _evaluation_pair()[0], tmp_path / f"{name}-kt", {})
        time.sleep(0.01)
    _finished_with_checkpoint(c, _evaluation_pair()[1], tmp_path / "c-ke", {S.TAG_EVALUATES: "kt"})
    time.sleep(0.01)
    other = {S.TAG_EVALUATES: "kt", S.TAG_EVALUATED_CHECKPOINT: str(tmp_path / "elsewhere.pt")}
    _finished_with_checkpoint(f, _evaluation_pair()[1], tmp_path / "f-ke", other)
    training, evaluation = _evaluation_pair()
    StudyTracker(store, "tiny", "hash").mark_cached([training, evaluation], rerun=False)
    assert (training.state, training.run_id) == (TrialState.REUSED, trained["a"])
    assert evaluation.state == TrialState.NEW


@pytest.mark.parametrize("mutex", ["file", "experiment"])
def test_a_lease_a_driver_could_not_free_is_its_own_again_and_another_drivers_refusal(store, mutex, monkeypatch):
    """``--wait`` runs a study again with one owner id: a lease an earlier run of it could not free (the store did
    not answer) is taken as its own; a driver with another id is refused (this process is alive)."""
    exp = experiment(store)
    first = StudyLease(store, exp, "tiny", "python -m runners.run tiny --wait", mutex=mutex, owner="driver-1")
    assert first.acquire() is None

    def down(*args, **kwargs):
        raise ConnectionError("the store does not answer")

    with monkeypatch.context() as patch:  # its release fails: the owner tag (and the lock experiment) stay
        patch.setattr(first.client, "set_experiment_tag", down)
        patch.setattr(first.client, "rename_experiment", down)
        first.release()
    with pytest.raises(LeaseHeld):
        StudyLease(store, exp, "tiny", "another driver", mutex=mutex).acquire()
    again = StudyLease(store, exp, "tiny", "python -m runners.run tiny --wait", mutex=mutex, owner="driver-1")
    assert again.acquire() is None
    again.release()
    last = StudyLease(store, exp, "tiny", "another driver", mutex=mutex)
    assert last.acquire() is None
    last.release()
