"""Eight processes write 1,000 metric values each into one sqlite MLflow store at once, in batches
(``MlflowClient.log_batch``, as ``runners.tracking`` writes them): every value is there afterwards."""

from __future__ import annotations

import multiprocessing
import time
import traceback

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

WRITERS = 8
VALUES = 1_000
KEYS = 10  # an "epoch" logs one value of each key: 100 batches of 10 metrics per writer
BATCHES = VALUES // KEYS


def expected(writer: int) -> set[tuple[str, int, float]]:
    return {(f"m{k}", step, writer * 1e6 + step * KEYS + k) for step in range(BATCHES) for k in range(KEYS)}


def write(uri: str, experiment_id: str, writer: int, start, results) -> None:
    """One writer process: its own run, 100 ``log_batch`` calls of 10 metrics, then FINISHED."""
    try:
        client = MlflowClient(uri)
        start.wait()  # every writer begins together
        run_id = client.create_run(experiment_id, run_name=f"writer{writer}").info.run_id
        now = int(time.time() * 1000)
        for step in range(BATCHES):
            batch = [Metric(f"m{k}", writer * 1e6 + step * KEYS + k, now, step) for k in range(KEYS)]
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id, "FINISHED")
        results.put((writer, run_id, None))
    except Exception:
        results.put((writer, None, traceback.format_exc()))


@pytest.mark.slow
def test_eight_concurrent_writers_lose_no_metric(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = MlflowClient(uri).create_experiment("writers")  # the driver creates the store first
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=write, args=(uri, experiment_id, w, start, results)) for w in range(WRITERS)]
    began = time.monotonic()
    for p in procs:
        p.start()
    outcome = {}
    for _ in procs:
        writer, run_id, error = results.get(timeout=300)
        outcome[writer] = (run_id, error)
    for p in procs:
        p.join(timeout=60)
    elapsed = time.monotonic() - began
    errors = {w: e for w, (_, e) in outcome.items() if e}
    assert not errors, "\n".join(f"writer {w}:\n{e}" for w, e in errors.items())
    assert all(p.exitcode == 0 for p in procs)

    client = MlflowClient(uri)
    for writer, (run_id, _) in sorted(outcome.items()):
        found = {(m.key, m.step, m.value) for k in range(KEYS) for m in client.get_metric_history(run_id, f"m{k}")}
        assert found == expected(writer), f"writer {writer}: {len(expected(writer) - found)} value(s) lost"
        assert client.get_run(run_id).info.status == "FINISHED"
    print(f"{WRITERS} writers x {VALUES} values in {elapsed:.1f} s")
