"""An MLflow tracking server that stops answering in the middle of a study (a real ``mlflow server``, stopped
and started again on the same port and database): training goes on, the writes wait on disk and reach MLflow
in order, once, when it answers again, in the same invocation or the next."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ean.train import read_starts
from tests.runners.conftest import run_subprocess, tiny_spec, write_yaml
from tests.runners.test_driver_faults import ROW_BASE, Driver, checkpoint_epoch, workdirs

pytestmark = pytest.mark.slow


class Server:
    """``mlflow server`` on 127.0.0.1:PORT over a sqlite file; stop() and start() keep port and data."""

    def __init__(self, folder: Path):
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}", "--workers", "1",
             "--artifacts-destination", str(self.folder / "artifacts")],
            cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                MlflowClient(self.uri).search_experiments()
                return
            except Exception:
                time.sleep(0.5)
        raise AssertionError("the MLflow server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture
def server(study_dir):
    server = Server(study_dir)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def the_trial(server: Server):
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name("tiny").experiment_id
    (run,) = client.search_runs([exp], "tags.`ean.kind` = 'trial'")
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss"))
    return run, steps


def args_for(study_dir: Path, server: Server, *extra: str) -> list[str]:
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE]))
    return [str(spec), "--mlflow-uri", server.uri, "--storage", str(study_dir / "runs"), "--no-report", *extra]


def test_an_outage_mid_study_delays_the_writes_and_loses_none(study_dir, server):
    driver = Driver(study_dir, args_for(study_dir, server, "trainer.epochs=10"))
    driver.wait_for(lambda: "epoch 1/10" in driver.output)
    server.stop()
    (workdir,) = workdirs(study_dir)
    down_at = checkpoint_epoch(workdir)  # read at once: the epochs are short, the failed write's retries are not
    driver.wait_for(lambda: "MLflow does not answer" in driver.output)  # a write failed while it was down
    driver.wait_for(lambda: checkpoint_epoch(workdir) > down_at)  # training goes on during the outage
    server.start()
    assert driver.process.wait(timeout=600) == 0, driver.output[-3000:]
    driver.process.stdout.close()
    assert "MLflow does not answer" in driver.output and "MLflow answers again" in driver.output
    run, steps = the_trial(server)
    assert run.info.status == "FINISHED" and "top1" in run.data.metrics
    assert steps == list(range(1, 11)), "every epoch once"
    assert [s["start_epoch"] for s in read_starts(workdir)] == [1], "the trial never stopped"


def test_writes_left_by_an_outage_are_applied_by_the_next_invocation(study_dir, server):
    args = args_for(study_dir, server, "trainer.epochs=3", "--mlflow-wait", "5")
    driver = Driver(study_dir, args)
    driver.wait_for(lambda: "epoch 1/3" in driver.output)
    server.stop()
    assert driver.process.wait(timeout=600) == 3, driver.output[-3000:]  # finished training, MLflow still down
    driver.process.stdout.close()
    assert "did not answer" in driver.output and "_mlflow_journal.jsonl" in driver.output
    server.start()
    again = run_subprocess(study_dir, args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "MLflow write(s) an earlier invocation left" in again.stdout
    assert "already FINISHED" in again.stdout, "the trial that finished during the outage is not trained again"
    run, steps = the_trial(server)
    assert run.info.status == "FINISHED" and steps == [1, 2, 3]
    (workdir,) = workdirs(study_dir)
    assert [s["start_epoch"] for s in read_starts(workdir)] == [1]
    assert not (study_dir / "runs" / "tiny" / "_mlflow_journal.jsonl").exists(), "an applied journal is removed"
