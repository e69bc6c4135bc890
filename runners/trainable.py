"""What runs inside a Ray Tune trial: ``ean.train.fit`` on a plain config, reporting every epoch.

A trial's working directory (checkpoints, scores, ``final.json``) lies under the study's storage path,
keyed by the trial key, so a retried or resumed trial finds its last checkpoint there (``fit`` resumes
from it). With ``resources.workers`` > 1 the trial runs DDP through Ray Train's TorchTrainer; its rank 0
writes each epoch's metrics to ``events.jsonl``, which the trial reports once the trainer returns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ray import tune

from runners.validate import train_config

FINAL_FILE = "final.json"
EVENTS_FILE = "events.jsonl"
INJECTED_FAILURE = "EAN_TEST_FAIL_ONCE_AFTER_EPOCH"  # tests: crash a trial once after this epoch


class InjectedFailure(RuntimeError):
    """Raised once by a trial when ``EAN_TEST_FAIL_ONCE_AFTER_EPOCH`` asks for it (tests of retries)."""


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _maybe_fail(workdir: Path, epoch: int) -> None:
    after = os.environ.get(INJECTED_FAILURE)
    marker = workdir / "injected_failure_done"
    if after is not None and epoch >= int(after) and not marker.exists():
        marker.touch()
        raise InjectedFailure(f"injected failure after epoch {epoch} (test of retries)")


def _run_fit(config: dict[str, Any], workdir: Path, report) -> dict[str, Any] | None:
    """Runs fit; returns its result, or None after reporting a NaN loss as the trial's final result."""
    from ean.train import NonFiniteLossError, fit

    try:
        return fit(train_config(config), workdir, report)
    except NonFiniteLossError as err:  # not worth retrying: the same data gives the same NaN
        tune.report({"final": 1.0, "failed": 1.0})
        (workdir / FINAL_FILE).write_text(json.dumps({"error": str(err)}))
        return None


def _write_final(workdir: Path, result: dict[str, Any]) -> None:
    tmp = workdir / (FINAL_FILE + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(workdir / FINAL_FILE)


def trial_function(tune_config: dict[str, Any]) -> None:
    """The Tune trainable: ``tune_config["trial"]`` holds the config, the workdir and the trial's name."""
    trial = tune_config["trial"]
    config, workdir = trial["config"], Path(trial["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / FINAL_FILE).unlink(missing_ok=True)
    if config.get("resources", {}).get("workers", 1) > 1:
        result = _run_ddp(trial)
    else:

        def report(event: dict[str, Any]) -> None:
            if event.get("done"):
                return  # the final result is fit's return value
            tune.report({"epoch": float(event["epoch"]), **numeric(event["metrics"])})
            _maybe_fail(workdir, int(event["epoch"]))

        result = _run_fit(config, workdir, report)
    if result is not None:
        _write_final(workdir, result)
        tune.report({"final": 1.0, **numeric(result)})


def _ddp_worker(trial: dict[str, Any]) -> None:
    """One DDP rank inside Ray Train (the process group is initialised by TorchTrainer)."""
    from ean.train import fit

    workdir = Path(trial["workdir"])
    events = workdir / EVENTS_FILE

    def report(event: dict[str, Any]) -> None:  # called on rank 0 only
        if event.get("done"):
            return
        with events.open("a") as f:
            f.write(json.dumps({"epoch": event["epoch"], **numeric(event["metrics"])}) + "\n")

    result = fit(train_config(trial["config"]), workdir, report)
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        _write_final(workdir, result)


def _run_ddp(trial: dict[str, Any]) -> dict[str, Any] | None:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    res = trial["config"]["resources"]
    workdir = Path(trial["workdir"])
    (workdir / EVENTS_FILE).unlink(missing_ok=True)
    trainer = TorchTrainer(
        _ddp_worker,
        train_loop_config=trial,
        scaling_config=ScalingConfig(
            num_workers=res["workers"],
            use_gpu=res.get("gpus", 0) > 0,
            resources_per_worker={"CPU": res.get("cpus", 1), "GPU": res.get("gpus", 0)},
        ),
        run_config=RunConfig(name=f"ddp-{trial['key']}", storage_path=str(workdir / "ray_train")),
    )
    trainer.fit()
    for line in (workdir / EVENTS_FILE).read_text().splitlines():
        tune.report(json.loads(line))
    return json.loads((workdir / FINAL_FILE).read_text())
