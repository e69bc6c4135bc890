"""A DDP trial whose error a retry would meet again, raised on one rank alone, fails at once: the other rank,
waiting for it in a collective, is ended by Ray Train instead of waiting for the process group's timeout, and
no restart of the ranks trains again. Real Ray Train (two ranks on the CPU, gloo) on a local Ray."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import ray

from runners import trainable
from runners.epochs import FINAL_KEY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # the old code waited 30 minutes in the collective


def fit_failing_on_rank_1(config: dict, workdir: Path, report) -> dict:
    """``ean.train.fit``'s signature: rank 1 meets a ValueError; rank 0 waits for it in an all-reduce."""
    import torch
    import torch.distributed as dist

    with (workdir / "fit_calls.txt").open("a") as f:
        f.write(f"{dist.get_rank()}\n")
    if dist.get_rank() == 1:
        raise ValueError("a bad value on rank 1 alone")
    dist.all_reduce(torch.zeros(1))
    return {"top1": 1.0}


def rank_failing_on_rank_1(trial: dict) -> None:
    from runners.trainable import ddp_rank

    ddp_rank(trial, fit_failing_on_rank_1)


@pytest.fixture(scope="module")
def local_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the ranks need not import the tests
    if ray.is_initialized():
        ray.shutdown()  # the local Ray an earlier test's driver left running in this process (its trials' CPUs)
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("max_failures", [0, 2])
def test_a_value_error_on_one_rank_fails_the_trial_at_once(tmp_path, local_ray, max_failures, monkeypatch):
    """``max_failures`` 0: Ray Train fails, and ``_run_ddp`` fails the trial with the rank's error instead of
    raising (which Tune would retry); 2: Ray Train starts the ranks again, which find the error and end."""
    trial = {
        "config": {"resources": {"workers": 2, "cpus": 1, "gpus": 0}},
        "workdir": str(tmp_path),
        "key": f"k{max_failures}",
        "max_failures": max_failures,
    }
    reported: list[dict] = []
    monkeypatch.setattr(trainable.tune, "report", reported.append)
    assert trainable._run_ddp(trial, worker=rank_failing_on_rank_1) is None
    assert reported == [{FINAL_KEY: 1.0, "failed": 1.0}]
    error = trainable.error_written(tmp_path)
    assert error.startswith("ValueError: a bad value on rank 1 alone (not retried") and "rank 1;" in error
    assert "Traceback" in (tmp_path / "error_rank1.txt").read_text()
    calls = (tmp_path / "fit_calls.txt").read_text().split()
    assert calls.count("1") == 1 and calls.count("0") <= 1, calls  # no rank trained again (rank 0 may be ended first)
    assert json.loads((tmp_path / trainable.FINAL_FILE).read_text()) == {"error": error}
