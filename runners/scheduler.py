"""Ray Tune runs a study's new trials; a driver-side callback writes everything to MLflow.

A local Ray is started on demand (``ray.init``; every server bound to 127.0.0.1, token authentication on),
or an existing cluster joined with ``--address``. Each
trial asks for its config's resources (CPUs, GPUs, fractions of a GPU); a trial with several workers runs
DDP inside (Ray Train's TorchTrainer) and reserves only a token itself so its workers get the devices.
Failed trials are retried from their last checkpoint (``FailureConfig(max_failures)``). Actors are reused
between trials to save Ray's per-trial start-up. Of Tune's own result files, only its JSON one is written
(Tune reads it back at the end; ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``, unless set otherwise): MLflow is the
study's record, and Tune's TensorBoard writer would import torch into the driver while its first trials start.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import PlacementGroupFactory
from ray.tune.experiment import Trial as TuneTrial
from ray.tune.logger import JsonLoggerCallback

from runners import signals
from runners.demand import default_concurrency, trial_demand
from runners.epochs import EpochReport
from runners.journal import BufferedTracker
from runners.local_ray import start_ray
from runners.progress import Progress
from runners.trainable import FINAL_FILE, trial_function
from runners.trials import Trial

TOKEN_MEMORY = 1024 * 1024  # what a DDP trial's own process reserves (its workers reserve the devices)


def trial_resources(config: dict[str, Any]) -> PlacementGroupFactory:
    """The resources of one trial from its config's ``resources`` section."""
    res = config["trial"]["config"].get("resources", {})
    if res.get("workers", 1) > 1:
        return PlacementGroupFactory([{"memory": TOKEN_MEMORY}])
    bundle = {"CPU": float(res.get("cpus", 1))}
    if res.get("gpus", 0):
        bundle["GPU"] = float(res["gpus"])
    return PlacementGroupFactory([bundle])


def workdir_of(storage: Path, trial: Trial) -> Path:
    """The trial's working folder: ``STORAGE/STUDY/KEY``, and ``KEY-rerunN`` for the N-th ``--rerun`` of a
    trial that FINISHED (a rerun trains from scratch instead of resuming the finished checkpoint). An evaluation
    trial's folder also names the checkpoint it tests (``KEY-ckpt<digest>``): an attempt interrupted while testing
    a training that was trained again since is never resumed with the old checkpoint or its result."""
    name = f"{trial.key}-rerun{trial.generation}" if trial.generation else trial.key
    if trial.evaluates and trial.checkpoint:
        name += "-ckpt" + hashlib.sha256(str(trial.checkpoint).encode()).hexdigest()[:10]
    return storage / trial.study / name


def left_elsewhere(storage: Path, trial: Trial) -> Path | None:
    """The newest checkpoint another study's working folder holds of the same training (``STORAGE/OTHER/KEY``),
    when the trial's own folder has none: that study's driver stopped before the trial finished, and this study
    holds the key's claim now (no other driver of the same MLflow store trains it: claims are per store, so
    studies that share a storage should share the store), so the trial resumes there instead of from scratch.
    None for an evaluation or a ``--rerun`` (which trains from scratch)."""
    if trial.evaluates or trial.generation:
        return None
    own = workdir_of(storage, trial) / "checkpoints" / "last.pt"
    if own.is_file():
        return None
    found = [p for p in storage.glob(f"*/{trial.key}/checkpoints/last.pt") if p != own and p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def payload(trial: Trial, storage: Path, max_failures: int) -> dict[str, Any]:
    """The plain dict a Ray trial receives (``max_failures``: its DDP workers' restarts, see ``trainable``).

    A training trial also carries what its key was made of (``Trial.key_inputs``), which the trial checks
    against what it would compute where it runs (``trainable.key_problem``)."""
    return {
        "name": trial.name,
        "key": trial.key,
        "config": trial.config,
        "workdir": str(workdir_of(storage, trial)),
        "max_failures": max_failures,
        "init_checkpoint": trial.checkpoint,
        "evaluates": trial.evaluates,
        "key_inputs": trial.key_inputs,
    }


class MlflowTrialLogger(tune.Callback):
    """Driver-side: hands each trial's run, epochs and end to the study's writer (``runners.journal``, which
    never makes Tune wait for MLflow), and updates the progress display."""

    def __init__(
        self,
        writer: BufferedTracker,
        trials: list[Trial],
        open_run: Callable[[Trial], None],
        progress: Progress,
    ):
        self.writer, self.open_run, self.progress = writer, open_run, progress
        self.trials = {t.key: t for t in trials}
        self.started: set[str] = set()
        self.outcome: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks with the experiment's state: the live writer and the run opener stay out;
        a restored experiment is driven by a new invocation."""
        return {**self.__dict__, "writer": None, "open_run": None}

    def _ids(self, trial: TuneTrial) -> tuple[str, str]:
        key = trial.config["trial"]["key"]
        return key, self.trials[key].name

    def on_trial_start(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        key = trial.config["trial"]["key"]
        if key not in self.started:  # once: a retried trial keeps its run
            self.open_run(self.trials[key])
            self.started.add(key)
        self.progress.started(self.trials[key].name)

    def on_trial_result(self, iteration: int, trials: list, trial: TuneTrial, result: dict, **info: Any) -> None:
        report = EpochReport.of_result(result)
        if report is None:
            return
        key, name = self._ids(trial)
        self.writer.log_epoch(key, report)
        self.progress.epoch(name, report)

    def on_trial_complete(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        key, name = self._ids(trial)
        workdir = trial.config["trial"]["workdir"]
        final = _read_final(Path(workdir))
        if not final and self._stopped(key):
            return
        if "error" in final or not final:
            self._failed(key, name, final.get("error", "the trial ended without a result"))
            return
        self.writer.submit("finish", key=key, final=final, workdir=workdir)
        self.outcome[key] = "finished"
        self.progress.finished(name, final.get("top1"))

    def on_trial_error(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        key, name = self._ids(trial)
        if not self._stopped(key):
            self._failed(key, name, _error_text(trial))

    def _failed(self, key: str, name: str, reason: str) -> None:
        self.writer.submit("fail", key=key, reason=reason)
        self.outcome[key] = "failed"
        self.progress.failed_trial(name, reason)

    def _stopped(self, key: str) -> bool:
        """Whether the trial ended because a signal stopped the study (its run is then KILLED, not FAILED)."""
        stop = signals.requested()
        if stop is None:
            return False
        self.writer.submit("kill", key=key, reason=f"stopped by {stop} before it finished; the same command resumes it")
        self.outcome[key] = "stopped"
        return True

    def on_trial_recover(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        self.progress.retrying(self._ids(trial)[1], _error_text(trial))


def _read_final(workdir: Path) -> dict[str, Any]:
    path = workdir / FINAL_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _error_text(trial: TuneTrial) -> str:
    """The trial's error as one line: the line of its traceback that names the exception (``ValueError: 1 of 41
    files are bad...``), not the last line of a message of several; else the last line."""
    path = getattr(trial, "error_file", None) or ""
    text = Path(path).read_text() if path and Path(path).is_file() else str(getattr(trial, "error_msg", "") or "")
    return error_line(text)


_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit|Failure)\b.*")


def error_line(text: str) -> str:
    """The line of a traceback's text that names the last exception raised, with its message's first line;
    the last line where none does."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (named or lines or ["the trial failed (no message)"])[-1]


def run_trials(
    trials: list[Trial],
    writer: BufferedTracker,
    open_run: Callable[[Trial], None],
    storage: Path,
    address: str | None,
    max_concurrent: int | None,
    max_failures: int,
    progress: Progress,
) -> dict[str, str]:
    """Runs ``trials`` on Ray Tune; returns trial key -> ``finished`` or ``failed``.

    ``max_concurrent`` None: as many at once as the cluster's resources hold (``default_concurrency``).

    ``open_run`` opens a trial's MLflow run when the trial starts (the callback's first event for it);
    ``writer`` takes every other MLflow write.
    """
    if not trials:
        return {}
    start_ray(address)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    start_trials_in_waiting_workers()
    if max_concurrent is None:
        import ray

        max_concurrent = default_concurrency(ray.cluster_resources(), [trial_demand(t.config) for t in trials])
    logger = MlflowTrialLogger(writer, trials, open_run, progress)
    names = {t.key: t.name for t in trials}
    tuner = tune.Tuner(
        tune.with_resources(trial_function, trial_resources),
        param_space={"trial": tune.grid_search([payload(t, storage, max_failures) for t in trials])},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,
            trial_name_creator=lambda t: names[t.config["trial"]["key"]].replace("/", "-"),
            trial_dirname_creator=lambda t: t.config["trial"]["key"],
        ),
        run_config=tune.RunConfig(
            name=f"{trials[0].study}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(storage / "_ray"),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            stop=StopOnSignal(),
            callbacks=[logger, JsonLoggerCallback()],
            verbose=0,
        ),
    )
    with signals.deferred():
        tuner.fit()
    return logger.outcome


def start_trials_in_waiting_workers() -> None:
    """Lets a trial's actor start in one of the worker processes Ray starts ahead of need.

    Tune gives every trial actor a runtime env of its own (``PL_DISABLE_FORK=1``, a PyTorch Lightning
    setting), and Ray hands an actor a waiting worker only when their runtime envs match: each trial then
    waits for a new process and a runtime-env set-up (about 2 s on 2 cores). A study runs ``ean.train.fit``,
    never Lightning, so the driver drops that default; the variables Tune passes on from the environment
    still go. Nothing happens where a Ray version has no such default.
    """
    try:
        from ray.tune.execution import class_cache
    except ImportError:
        return
    defaults = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    if isinstance(defaults, dict):
        defaults.pop("PL_DISABLE_FORK", None)


class StopOnSignal(tune.Stopper):
    """Stops the whole experiment once SIGINT or SIGTERM came (``runners.signals``)."""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return signals.requested() is not None
