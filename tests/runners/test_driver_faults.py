"""Faults of a running study with a real local Ray and a real sqlite MLflow store: a killed trial process,
a driver SIGKILLed three times, SIGINT and SIGTERM, a second driver of the same study.

Every assertion about resuming reads the trial's own start records (``starts.jsonl``: the first epoch each
attempt trained) and its checkpoint, not the driver's messages.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ean.train import load_checkpoint, read_starts
from tests.runners.conftest import REPO, cli_args, run_subprocess, tiny_spec, trial_runs, write_yaml

RAY_LOG_WARNING = re.compile(r"\b(WARNING|ERROR)\b.*\.py:\d+ -- ")  # Ray's log lines: LEVEL file.py:line -- text

pytestmark = pytest.mark.slow

ROW_BASE = {"id": "base", "label": "Baseline", "overrides": ["block=none", "regions=none"]}
ROW_EAB = {"id": "eab", "label": "+EAB", "overrides": ["block=eab", "regions=none"]}
ROW_NAN = {"id": "nan", "label": "Diverges", "overrides": ["block=none", "regions=none", "trainer.lr=1e30"]}


class Driver:
    """``python -m runners.run ...`` in the background, its output collected line by line."""

    def __init__(self, cwd: Path, args: list[str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runners.run", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            assert self.process.poll() is None, "the driver ended first:\n" + self.output[-3000:]
            time.sleep(0.05)
        raise AssertionError("timed out waiting; output:\n" + self.output[-3000:])

    def kill(self, sig: int = signal.SIGKILL) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=120)
        self._reader.join(timeout=10)
        self.process.stdout.close()
        return code


def workdirs(study_dir: Path, study: str = "tiny") -> list[Path]:
    root = study_dir / "runs" / study
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")) if root.is_dir() else []


def checkpoint_epoch(workdir: Path) -> int:
    path = workdir / "checkpoints" / "last.pt"
    return int(load_checkpoint(path)["epoch"]) if path.is_file() else 0


def epoch_steps(study_dir: Path, run_id: str) -> list[int]:
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    return sorted(m.step for m in client.get_metric_history(run_id, "train_loss"))


def history(study_dir: Path, run_id: str) -> list[tuple[int, float]]:
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train_loss"))


def test_a_killed_trial_resumes_after_its_checkpoint_with_an_uncrashed_runs_numbers(study_dir):
    """The trial's process is SIGKILLed after its first checkpoint: Tune retries it, it resumes at epoch k+1
    (its own start records say so), it keeps its one MLflow run, and its numbers equal an uncrashed run's.
    A NaN loss fails its trial alone, without a retry."""
    epochs = ["trainer.epochs=4", "trainer.deterministic=true"]
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE, ROW_NAN]))
    driver = Driver(study_dir, cli_args(study_dir, spec, "--no-report", "--max-concurrent", "1", *epochs))

    def base_checkpointed() -> Path | None:
        return next((w for w in workdirs(study_dir) if checkpoint_epoch(w) >= 1), None)

    driver.wait_for(lambda: base_checkpointed() is not None)
    base = base_checkpointed()
    (start,) = read_starts(base)
    kill_and_wait(start["pid"])  # the trial's process, not the driver
    killed_after = checkpoint_epoch(base)
    assert driver.process.wait(timeout=600) == 1, driver.output[-3000:]  # the NaN row failed
    driver.process.stdout.close()

    starts = [s["start_epoch"] for s in read_starts(base)]
    assert starts == [1, killed_after + 1], f"killed after epoch {killed_after}; attempts started at {starts}"
    runs = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir)}
    assert len(trial_runs(study_dir)) == 2, "one run per trial"
    assert runs["base"].info.status == "FINISHED"
    assert epoch_steps(study_dir, runs["base"].info.run_id) == [1, 2, 3, 4]
    (nan_dir,) = [w for w in workdirs(study_dir) if w != base]
    assert [s["start_epoch"] for s in read_starts(nan_dir)] == [1], "a NaN loss is not retried"
    assert runs["nan"].info.status == "FAILED" and "epoch" in runs["nan"].data.tags["ean.error"]

    clean = study_dir / "clean"
    clean.mkdir()
    spec = write_yaml(clean / "tiny.yaml", tiny_spec([ROW_BASE]))
    result = run_subprocess(clean, cli_args(clean, spec, "--no-report", *epochs))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    noise = [ln for ln in (result.stdout + result.stderr).splitlines() if RAY_LOG_WARNING.search(ln)]
    assert not noise, noise  # a study that runs cleanly prints no warning of Ray's or Tune's own
    (uncrashed,) = trial_runs(clean)
    assert uncrashed.data.tags["ean.trial_key"] == runs["base"].data.tags["ean.trial_key"]
    assert history(clean, uncrashed.info.run_id) == history(study_dir, runs["base"].info.run_id)
    for metric in ("top1", "top5", "test_loss"):
        assert uncrashed.data.metrics[metric] == runs["base"].data.metrics[metric], metric


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_and_wait(pid: int, timeout: float = 30) -> None:
    """SIGKILLs ``pid`` and waits until it is gone (its files are then final)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + timeout
    while time.time() < deadline and alive(pid):
        time.sleep(0.1)


def test_three_driver_kills_then_a_rerun_finish_every_trial_with_its_whole_history(study_dir):
    """The driver is SIGKILLed three times at random points after a trial checkpointed; the next invocation
    finishes the study: one run per key, none RUNNING, every epoch in MLflow once, and no trial started over
    from an epoch before its checkpoint."""
    rng = random.Random(16)
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE, ROW_EAB], seeds=(0, 1)))
    args = cli_args(study_dir, spec, "--no-report", "--max-concurrent", "2", "trainer.epochs=4")
    floor: dict[Path, int] = {}  # workdir -> its checkpoint's epoch when a driver was killed
    kills = []
    for attempt in range(3):
        driver = Driver(study_dir, args)
        seen = {w: checkpoint_epoch(w) for w in workdirs(study_dir)}
        driver.wait_for(lambda seen=seen: any(checkpoint_epoch(w) > seen.get(w, 0) for w in workdirs(study_dir)))
        time.sleep(rng.uniform(0.0, 3.0))
        kills.append(time.time())
        driver.kill(signal.SIGKILL)
        time.sleep(3)  # trial processes outlive their driver for a moment and may write one more checkpoint
        floor.update({w: checkpoint_epoch(w) for w in workdirs(study_dir)})
        if attempt == 0:
            assert any(r.info.status == "RUNNING" for r in trial_runs(study_dir))

    result = run_subprocess(study_dir, args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = trial_runs(study_dir)
    keys = [r.data.tags["ean.trial_key"] for r in runs]
    assert len(keys) == len(set(keys)) == 4, "one run per trial key"
    assert {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert epoch_steps(study_dir, run.info.run_id) == [1, 2, 3, 4], run.info.run_name
    for workdir, epoch in floor.items():
        later = [s["start_epoch"] for s in read_starts(workdir) if s["time"] > kills[-1]]
        assert all(start > epoch for start in later), f"{workdir.name}: checkpoint at {epoch}, restarts at {later}"
    print(f"backfilled epochs: {result.stdout.count('filled in from')} trial(s)")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_trials_marks_their_runs_killed_and_says_how_to_resume(study_dir, sig, code):
    """Also: while the first driver runs, a second one of the same study (other --rows) is refused, naming it,
    and touches nothing."""
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE, ROW_EAB]))
    args = cli_args(study_dir, spec, "--no-report", "trainer.epochs=30")
    driver = Driver(study_dir, args)
    driver.wait_for(lambda: "epoch 1/30" in driver.output)

    second = run_subprocess(study_dir, cli_args(study_dir, spec, "--no-report", "--rows", "eab"))
    assert second.returncode == 2
    assert f"pid {driver.process.pid}" in second.stderr and "another driver" in second.stderr, second.stderr
    assert {r.info.status for r in trial_runs(study_dir)} == {"RUNNING"}

    start = time.monotonic()
    assert driver.kill(sig) == code, driver.output[-3000:]  # kill() gives the driver 120 s to exit
    print(f"{signal.Signals(sig).name}: exit {code} after {time.monotonic() - start:.1f} s")
    assert "Resume with:" in driver.output and "python -m runners.run" in driver.output
    assert "Tuner.restore" not in driver.output and "Traceback" not in driver.output
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny").experiment_id
    statuses = {r.info.run_name: r.info.status for r in client.search_runs([exp])}
    assert "RUNNING" not in statuses.values() and "KILLED" in statuses.values(), statuses
    parent = [r for r in client.search_runs([exp], "tags.`ean.kind` = 'study'")]
    assert [r.info.status for r in parent] == ["KILLED"]
    assert not client.get_experiment(exp).tags.get("ean.lease.owner"), "the lease is released"


def test_a_driver_whose_lease_another_driver_took_over_stops_and_writes_nothing_more(study_dir):
    """A driver on another host judged this one dead (its heartbeats could not reach a tracking server for
    60 s) and took the lease: at its next heartbeat this driver stops its trials, writes nothing more to MLflow
    (its runs are the other driver's now: none marked KILLED, no epoch logged after) and exits 2 naming it."""
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE]))
    driver = Driver(study_dir, cli_args(study_dir, spec, "--no-report", "trainer.epochs=30"))
    driver.wait_for(lambda: "epoch 1/30" in driver.output)
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny").experiment_id
    other = {"ean.lease.host": "host-b", "ean.lease.pid": "4242", "ean.lease.heartbeat": f"{time.time():.3f}"}
    for key, value in {**other, "ean.lease.command": "python -m runners.run tiny.yaml", "ean.lease.owner": "b"}.items():
        client.set_experiment_tag(exp, key, value)  # what driver B writes once it holds the lease
    taken = time.time()
    assert driver.process.wait(timeout=120) == 2, driver.output[-3000:]
    driver._reader.join(timeout=10)
    assert "took the lease over" in driver.output and "host-b" in driver.output, driver.output[-3000:]
    assert "Traceback" not in driver.output
    (run,) = trial_runs(study_dir)
    assert run.info.status == "RUNNING", "the run is left to the driver that holds the lease"
    logged = client.get_metric_history(run.info.run_id, "train_loss")
    assert all(m.timestamp / 1000 < taken + 6 for m in logged), "no epoch written after the next heartbeat"
    assert len(logged) < 30
    assert client.get_experiment(exp).tags["ean.lease.owner"] == "b", "the other driver's lease is left alone"
    (parent,) = client.search_runs([exp], "tags.`ean.kind` = 'study'")
    assert parent.info.status == "RUNNING"
    journal = study_dir / "runs" / "tiny" / "_mlflow_journal.jsonl"
    ops = [json.loads(line)["op"] for line in journal.read_text().splitlines()] if journal.is_file() else []
    assert not {"kill", "fail", "end_parent"} & set(ops), f"nothing for a later replay to apply either: {ops}"


ROW_DDP = {"id": "ddp", "label": "DDP", "overrides": ["block=none", "regions=none", "resources=ddp2"]}
ROW_DDP_NAN = {"id": "ddp_nan", "label": "DDP NaN", "overrides": [*ROW_DDP["overrides"], "trainer.lr=1e30"]}


def test_a_killed_ddp_worker_restarts_the_group_from_its_checkpoint(study_dir):
    """Rank 0 of a 2-worker DDP trial is SIGKILLed after its first checkpoint: Ray Train restarts the group,
    which resumes at epoch k+1; epochs reach the driver while the trial runs, each epoch is in MLflow once.
    A NaN loss under DDP fails its trial without a retry."""
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_DDP, ROW_DDP_NAN]))
    args = cli_args(study_dir, spec, "--no-report", "--max-concurrent", "1", "trainer.epochs=4")
    driver = Driver(study_dir, args)

    def ddp_checkpointed() -> Path | None:
        return next((w for w in workdirs(study_dir) if checkpoint_epoch(w) >= 1), None)

    driver.wait_for(lambda: ddp_checkpointed() is not None and "ddp/seed0: epoch 1/4" in driver.output)
    workdir = ddp_checkpointed()
    assert "ddp/seed0: finished" not in driver.output, "epoch 1 was reported while the trial ran"
    (start,) = read_starts(workdir)
    assert start["world_size"] == 2
    kill_and_wait(start["pid"])  # rank 0, a Ray Train worker
    killed_after = checkpoint_epoch(workdir)
    assert driver.process.wait(timeout=900) == 1, driver.output[-3000:]  # the NaN row failed
    driver.process.stdout.close()

    starts = [(s["start_epoch"], s["world_size"]) for s in read_starts(workdir)]
    assert starts == [(1, 2), (killed_after + 1, 2)], f"killed after epoch {killed_after}: {starts}"
    assert "ddp/seed0: crashed" not in driver.output, "Ray Train restarted the group, not Tune the trial"
    runs = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir)}
    assert len(trial_runs(study_dir)) == 2
    assert runs["ddp"].info.status == "FINISHED"
    assert epoch_steps(study_dir, runs["ddp"].info.run_id) == [1, 2, 3, 4]
    (nan_dir,) = [w for w in workdirs(study_dir) if w != workdir]
    assert [s["start_epoch"] for s in read_starts(nan_dir)] == [1], "a NaN loss under DDP is not retried"
    assert runs["ddp_nan"].info.status == "FAILED" and "epoch" in runs["ddp_nan"].data.tags["ean.error"]
