"""What a study will cost before it starts: ``python -m runners.run STUDY --dry-run --estimate``.

Each distinct network of the trials to run (new or resumed; cached and reused trials are free) trains a few
steps on the device the trial would use (``ean.train.step_time``: a GPU for a trial that asks for one, where
this machine has one; else the CPU), and
the time scales to the recipe as it would run:

    training   = epochs x steps per epoch x seconds per step, steps per epoch = train videos // global batch
                 (at most ``max_steps_per_epoch``); the data's own size, or its official one where it is not
    evaluation = a forward pass costs about a third of a training step per clip (forward + backward + update):
                 val videos x that for each pass ``fit`` runs (``evaluated_views``): the per-epoch validation,
                 1 clip x 1 crop, every ``eval_every`` epochs and after the last; the final test with the
                 protocol's views (clips x crops) when it has more than one (at 1 x 1 it reuses the last
                 validation); an evaluation trial runs the final test only; a view at the test crop
                 (``test_crop_size``) costs its pixels over the training crop's (Kinetics: 256^2 / 224^2)
    a resumed trial (an unfinished run reopened) trains only the epochs after the last one its run logged
    device-hours = (training + evaluation) x the devices a trial holds (its GPUs, all workers' together, a
                 fraction of one counted whole: the step was timed on a whole GPU, and trials that share one
                 each run slower; a CPU trial: its workers); the wall clock, with ``--max-concurrent`` trials
                 at once (default: as many as the cluster holds, as a run would start them:
                 ``runners.demand.default_concurrency``), is at least the trials' hours spread over them
                 (perfect packing), at least the longest trial, and where the cluster's CPUs and GPUs are known
                 (this machine's, or those of the cluster a running study joined), at least the hours its
                 trials hold of each over what it has; for the trainings and then for the evaluation rows
                 (they start from the finished trainings): a lower bound

A CPU times one clip at a time, then as many as about 2 s hold, and reads the per-device batch off the line
through the two (``ean.train.step_time``): a small network's fixed cost per step is most of its time. Data
loading is not timed (a study whose loaders keep the device fed: ``benchmarks/data_loading.py``).
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import sys
from dataclasses import dataclass

from runners.cache import DiskCache
from runners.demand import default_concurrency, trial_demand
from runners.trials import Trial
from runners.validate import devices_of, train_config

#: A forward pass over a clip costs about this share of a training step's time per clip.
FORWARD_SHARE = 1 / 3


@dataclass(frozen=True)
class TrialCost:
    """The estimated cost of one trial.

    Attributes:
        trial: the trial.
        seconds_per_step: one optimizer step (the per-device batch, accumulation included).
        steps: optimizer steps of the whole training.
        train_hours: training time, hours.
        eval_hours: evaluation passes, hours.
        devices: devices the trial holds (``held_devices``).
        gpus: GPUs it holds, each counted whole (0 for a CPU trial).
        cpus: CPUs it holds (``runners.demand.trial_demand``).
    """

    trial: Trial
    seconds_per_step: float
    steps: int
    train_hours: float
    eval_hours: float
    devices: float
    gpus: float = 0.0
    cpus: float = 0.0

    @property
    def device_hours(self) -> float:
        return (self.train_hours + self.eval_hours) * self.devices


def estimate(
    trials: list[Trial],
    steps: int = 2,
    device: str | None = None,
    *,
    cache: DiskCache | None = None,
    cached_only: bool = False,
) -> list[TrialCost] | None:
    """The cost of each trial that will train (each distinct network timed once, and the time kept in the
    on-disk cache under the network, the recipe, the devices, the device's name and the code that ran the
    step: ``step_code_signature``). ``cached_only``: None
    unless every network's time is in the cache (nothing is timed: the figure a running study logs)."""
    cache = cache or DiskCache("step_seconds")
    code = step_code_signature()
    if cached_only and not steps_timed(cache, code):
        return None  # no step timed by this code: nothing to import (torch) while a study's trials start
    from ean.data.identity import split_size
    from ean.train.config import device_batch, resolve_trainer_config

    planned = []
    for trial in (t for t in trials if not t.state.finished):
        config, devices = train_config(trial.config), devices_of(trial.config)
        trainer = resolve_trainer_config(config)
        where = device or ("cuda" if trainer["device"] == "cuda" and _has_cuda() else "cpu")
        if where == "cpu" and not trainer["num_threads"]:  # as Ray runs it: a thread per CPU it holds
            trainer = {**trainer, "num_threads": trial_threads(trial.config)}
            config = {**config, "trainer": {**config["trainer"], "num_threads": trainer["num_threads"]}}
        name = _device_name(where, trainer["num_threads"])
        key = {"model": config["model"], "trainer": trainer, "devices": devices, "device": name}
        planned.append((trial, config, devices, trainer, {**key, "code": code, "where": where}))
    untimed: list[dict] = []  # the distinct networks not timed yet, in the order they are timed
    for *_, key in planned:
        if key not in untimed and cache.get(key) is None:
            untimed.append(key)
    if untimed and cached_only:
        return None
    costs = []
    for trial, config, devices, trainer, key in planned:
        seconds = cache.get(key)
        if seconds is None:
            print(
                f"estimate: timing {trial.name} ({untimed.index(key) + 1}/{len(untimed)} networks) on "
                f"{key['device']}...",
                end="",
                flush=True,
                file=sys.stderr,
            )
            seconds = _time_step(config, steps, devices, key["where"])
            print(f" {seconds:.2f} s/step", file=sys.stderr)
            cache.put(key, seconds)
        per_device, accumulation = device_batch(trainer, devices)
        videos = {split: split_size(config["data"], split) for split in ("train", "val")}
        costs.append(_cost(trial, seconds, trainer, videos, per_device * accumulation))
    return costs


def step_code_signature() -> str:
    """What a timed step ran: ``ean``'s source files (path, size, mtime) and torch's version. A time measured
    before the models or the training loop changed is not reused."""
    from runners.plan_cache import code_signature

    return f"torch {importlib.metadata.version('torch')}, ean {code_signature(('ean',))}"


def _time_step(config: dict, steps: int, devices: int, where: str) -> float:
    """Seconds per step on ``where``; on a CPU timed on one clip, then on as many as about 2 s hold, and read
    off the line through the two (``ean.train.step_time.step_seconds``)."""
    from ean.train.step_time import step_seconds

    return step_seconds(config, steps, devices, where, clips=1 if where == "cpu" else None)


def trial_threads(config: dict) -> int:
    """The threads a CPU trial's worker computes with: Ray sets ``OMP_NUM_THREADS`` to the CPUs it holds
    (``resources.cpus``, at least 1) where the trainer leaves ``num_threads`` unset."""
    return max(math.floor(float(config.get("resources", {}).get("cpus", 1))), 1)


def _device_name(where: str, threads: int | None = None) -> str:
    import torch

    if where.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{where}:{threads or torch.get_num_threads()} threads"


def held_devices(config: dict) -> float:
    """The devices one trial's time is charged for: its GPUs (all workers' together), a fraction of one counted
    whole (the step was timed on a whole GPU, and trials that share one each run slower: the GPU's time is
    theirs together), or for a trial that asks for none, its workers (processes on CPUs)."""
    workers = devices_of(config)
    gpus = trial_demand(config).get("GPU", 0.0) / workers
    return workers * max(gpus, 1.0) if gpus else float(workers)


def _cost(trial: Trial, seconds: float, trainer: dict, videos: dict[str, int], step_clips: int) -> TrialCost:
    """The cost of ``trial`` whose optimizer step takes ``seconds`` for ``step_clips`` clips per device."""
    devices, train_videos, val_videos = devices_of(trial.config), videos["train"], videos["val"]
    per_epoch = max(1, train_videos // trainer["batch_size"])
    per_epoch = min(per_epoch, trainer["max_steps_per_epoch"] or per_epoch)
    epochs = 0 if trial.evaluates else max(trainer["epochs"] - trial.epochs_done, 0)
    train_hours = epochs * per_epoch * seconds / 3600
    data = trial.config["data"]
    views = int(data.get("test_clips") or 1) * int(data.get("test_crops") or 1)
    per_clip = seconds / step_clips * eval_pixels({"crop_size": trial.config["model"].get("input_size"), **data})
    clips = evaluated_views(epochs, trainer.get("eval_every") or 1, views) * math.ceil(val_videos / devices)
    eval_hours = clips * per_clip * FORWARD_SHARE / 3600
    held, demand = held_devices(trial.config), trial_demand(trial.config)
    gpus = held if demand.get("GPU") else 0.0
    return TrialCost(trial, seconds, epochs * per_epoch, train_hours, eval_hours, held, gpus, demand.get("CPU", 0.0))


def eval_pixels(data: dict) -> float:
    """A view's pixels at evaluation over a training crop's: ``(test_crop_size / crop_size)^2`` (Kinetics tests
    crops of 256 after training on 224: 1.31); the network's work grows with them."""
    crop = data.get("crop_size")
    test = data.get("test_crop_size") or crop  # the training crop (``crop_size``, else the model's input size)
    return (test / crop) ** 2 if crop and test else 1.0


def evaluated_views(epochs: int, eval_every: int, views: int) -> int:
    """Views of each validation video that ``ean.train.fit`` evaluates over a trial: one per validation (after
    every ``eval_every``-th epoch and the last, 1 clip x 1 crop), and the final test's ``views`` unless it is
    the last validation again (``views`` = 1 after training)."""
    validations = -(-epochs // eval_every)  # after epochs k x eval_every, and after the last: ceil
    final_test = views if views > 1 or not epochs else 0
    return validations + final_test


def totals(costs: list[TrialCost], slots: int, cluster: dict[str, float] | None = None) -> tuple[float, float]:
    """(device-hours, wall-clock hours) of ``costs`` with ``slots`` trials at once on ``cluster`` (its ``CPU`` and
    ``GPU``; None: not known). The trainings run first, then the evaluation rows' trials (``runners.session``);
    each phase takes at least its trials' hours spread over the slots (perfect packing), at least its longest
    trial, and at least, for each of the cluster's CPUs and GPUs, the hours its trials hold of them over what
    the cluster has (trials that share a GPU each run slower: its hours are theirs together)."""
    device_hours = sum(c.device_hours for c in costs)
    wall = 0.0
    for phase in (False, True):
        group = [c for c in costs if bool(c.trial.evaluates) == phase]
        hours = [c.train_hours + c.eval_hours for c in group]
        bounds = [sum(hours) / max(slots, 1), max(hours, default=0.0)]
        for name, held in (("CPU", lambda c: c.cpus), ("GPU", lambda c: c.gpus)):
            if cluster and cluster.get(name, 0.0) > 0:
                bounds.append(sum(h * held(c) for h, c in zip(hours, group, strict=True)) / cluster[name])
        wall += max(bounds)
    return device_hours, wall


def format_costs(
    costs: list[TrialCost],
    trials: list[Trial],
    slots: int,
    cluster: dict[str, float] | None = None,
    waiting: int = 0,
) -> str:
    """Per row (per row and dataset column in a study that compares datasets) of the planned ``trials`` and in
    all: trials to train and free ones (cached or reused), seconds per step, steps, hours per trial,
    device-hours; the wall clock on ``cluster`` (``totals``). ``waiting``: trials left to other drivers, in
    neither count."""
    rows: dict[str, list[TrialCost]] = {}
    free: dict[str, int] = {}
    for trial in trials:  # a finished trial (cached or reused) is never priced (``estimate``)
        row = f"{trial.row.id}/{trial.column}" if trial.column else trial.row.id
        rows.setdefault(row, [])
        free[row] = free.get(row, 0) + trial.state.finished
    for cost in costs:
        trial = cost.trial
        row = f"{trial.row.id}/{trial.column}" if trial.column else trial.row.id
        rows.setdefault(row + (" (resumed)" if trial.epochs_done else ""), []).append(cost)
    width = max([24, *map(len, rows)])
    lines = [
        f"{'row':{width}} {'train':>5} {'free':>4} {'s/step':>8} {'steps':>9} {'per trial':>9} {'device time':>11}"
    ]
    for row, items in rows.items():
        head = f"{row:{width}} {len(items):5d} {free.get(row, 0):4d}"
        if not items and not free.get(row) and f"{row} (resumed)" in rows:
            continue  # its trials are all resumed: priced on that line
        if not items:
            lines.append(f"{head} {'-':>8} {'-':>9} {'-':>9} {'-':>11}")
            continue
        c = items[0]
        per_trial = duration(c.train_hours + c.eval_hours)
        total = duration(sum(i.device_hours for i in items))
        lines.append(f"{head} {c.seconds_per_step:8.2f} {c.steps:9d} {per_trial:>9} {total:>11}")
    device_hours, wall = totals(costs, slots, cluster)
    left = f", {waiting} left to other drivers" if waiting else ""
    where = (
        f" with {cluster.get('CPU', 0.0):g} CPUs and {cluster.get('GPU', 0.0):g} GPUs"
        if cluster
        else " (the cluster's size not known: --max-concurrent says how many at once)"
    )
    lines.append(
        f"in all: {len(costs)} trial(s) to train ({sum(free.values())} cached or reused: free{left}), "
        f"{device_hours:.2f} device-hours ({duration(device_hours)}); wall clock at least {duration(wall)} on "
        f"{slots} slot(s) (--max-concurrent){where}"
    )
    return "\n".join(lines)


def duration(hours: float) -> str:
    """``hours`` as a person reads it: ``"3.2 h"``, ``"14 min"``, ``"40 s"`` (each unit up to what rounds to 60)."""
    if round(hours * 60) >= 60:
        return f"{hours:.1f} h"
    if round(hours * 3600) >= 60:
        return f"{round(hours * 60)} min"
    return f"{round(hours * 3600)} s"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def local_cluster() -> dict[str, float]:
    """This machine's CPUs and GPUs, as a local Ray would hold them."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def default_slots(trials: list[Trial], cluster: dict[str, float] | None = None) -> int:
    """Trials that run at once by default, as a run starts them: as many as the cluster's CPUs and GPUs hold of
    the smallest trial (``runners.demand.default_concurrency``); ``cluster`` None: this machine's."""
    return default_concurrency(cluster or local_cluster(), [trial_demand(t.config) for t in trials])


def steps_timed(cache: DiskCache | None = None, code: str | None = None) -> bool:
    """Whether any step was timed by this code (``estimate(cached_only=True)`` is None otherwise); no torch."""
    code, cache = code or step_code_signature(), cache or DiskCache("step_seconds")
    return any(isinstance(k, dict) and k.get("code") == code for k in cache.stored_keys())
