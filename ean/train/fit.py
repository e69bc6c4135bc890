"""``fit``: one trial, a plain function of a resolved config that trains, evaluates and reports.

Dataflow::

    config -> resolve_config -> build_run (model, loaders, SGD, schedule)
      -> resume from workdir/checkpoints/last.pt if it exists (the orchestrator's retry)
      -> append the attempt's start (first epoch, resumed?, pid) to workdir/starts.jsonl
      -> for each remaining epoch: restore RNG -> train_epoch -> capture RNG -> [evaluate 1 clip x 1 crop]
           -> [checkpoint] -> reporter({"epoch", "metrics", "checkpoint", "done": False})
      -> evaluate with the protocol (test_clips x test_crops) -> workdir/scores/val_scores.npz
      -> reporter({"epoch", "metrics", "checkpoint", "scores_path", "done": True}) -> result dict

Every epoch starts from the generator states captured at the end of the previous one, also in an
uninterrupted run, so a run resumed from epoch k takes exactly the same steps as one that never stopped,
whatever the reporter or the evaluation did in between. Under torch.distributed every rank runs ``fit``;
metrics are reduced over the ranks; rank 0 alone writes files and calls the reporter (every rank calls it
with ``report_all_ranks``, for Ray Train, whose ``ray.train.report`` every worker must call).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import ean
from ean.train.build import Run, build_run, close_run, resolve_config
from ean.train.checkpoint import CHECKPOINT_FORMAT, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from ean.train.config import resolve_device
from ean.train.distributed import all_gather_objects, all_reduce, barrier, broadcast_object, is_main, rank, world_size
from ean.train.errors import ResumeError
from ean.train.evaluate import evaluate
from ean.train.loop import train_epoch
from ean.train.metrics import peak_memory_mb, reset_peak_memory
from ean.train.runtime import run_settings
from ean.train.scores import write_scores

log = logging.getLogger("ean.train")

Reporter = Callable[[dict[str, Any]], None]
CHECKPOINT_PATH = Path("checkpoints") / "last.pt"
SCORES_PATH = Path("scores") / "val_scores.npz"
STARTS_PATH = Path("starts.jsonl")
VAL_KEYS = ("val_loss", "val_top1", "val_top5")


def fit(
    config: dict[str, Any], workdir: str | Path, reporter: Reporter | None = None, *, report_all_ranks: bool = False
) -> dict[str, Any]:
    """Trains and evaluates the model a resolved config describes, resuming from ``workdir`` if possible.

    Args:
        config: ``{"model": ..., "data": ..., "trainer": ..., "seed": int}`` (see ``ean.train.build``).
        workdir: the trial's folder: ``checkpoints/last.pt`` and ``scores/val_scores.npz`` go there. Under
            DDP every rank must be able to read it.
        reporter: called by rank 0 after every epoch with ``{"epoch": e (1-based), "metrics": {...},
            "checkpoint": path or None, "done": False}`` and once at the end with ``{"epoch", "metrics":
            {"top1", "top5", "test_loss", "mean_class_top1"}, "checkpoint", "scores_path", "done": True}``.
            Epoch metrics: train_loss, train_top1, lr, clips_per_s, peak_memory_mb, bad_files,
            epoch_time_s, and on evaluation epochs val_loss, val_top1, val_top5 (percent).
        report_all_ranks: call the reporter on every rank (same metrics; ``checkpoint`` None except on rank
            0), for reporters that must run on all workers (``ray.train.report`` is a barrier).

    Returns:
        ``top1``, ``top5``, ``test_loss``, ``mean_class_top1``, ``per_class_top1`` ({class name: percent}): the
        final evaluation's, under the data config's protocol (``test_loss`` is its mean NLL of the
        softmax of the view-averaged logits; an epoch's ``val_loss`` is the per-epoch validation's, a different number
        whenever the protocols differ),
        ``scores_path``, ``epochs`` (completed), ``history`` (every epoch's metrics, across resumes),
        ``num_videos``, ``protocol`` (e.g. "10 clips x 3 crops").

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the message names the epoch and step).
        TrainerConfigError: a bad or inconsistent config.
        ResumeError: ``last.pt`` belongs to another config.
    """
    workdir = Path(workdir)
    resolved = resolve_config(config)
    device = resolve_device(resolved["trainer"])
    with run_settings(resolved["trainer"], device):
        run = build_run(resolved, device)
        try:
            resumed = resume(run, workdir / CHECKPOINT_PATH)
            record_start(run, workdir, resumed)
            return _train_and_test(run, workdir, _ranked(reporter, report_all_ranks))
        finally:
            close_run(run)


def record_start(run: Run, workdir: Path, resumed: bool) -> None:
    """Appends this attempt's start to ``workdir/starts.jsonl`` (rank 0): the first epoch it trains, whether
    it resumed, its pid, host and world size. The trial's own record of every start, crash or not."""
    if not is_main():
        return
    record = {
        "start_epoch": run.epoch + 1,
        "resumed": resumed,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "world_size": world_size(),
        "time": time.time(),
    }
    path = workdir / STARTS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def read_starts(workdir: str | Path) -> list[dict[str, Any]]:
    """The start records of a workdir (``record_start``), oldest first."""
    path = Path(workdir) / STARTS_PATH
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _train_and_test(run: Run, workdir: Path, reporter: Reporter | None) -> dict[str, Any]:
    last_eval = None
    for epoch in range(run.epoch + 1, run.trainer["epochs"] + 1):
        metrics, last_eval = run_epoch(run, epoch)
        saved = maybe_checkpoint(run, workdir / CHECKPOINT_PATH)
        _report(reporter, {"epoch": epoch, "metrics": metrics, "checkpoint": saved, "done": False})
    result = final_evaluation(run, workdir, last_eval)
    checkpoint = workdir / CHECKPOINT_PATH
    final = {k: result[k] for k in ("top1", "top5", "test_loss", "mean_class_top1")}
    _report(
        reporter,
        {
            "epoch": run.epoch,
            "metrics": final,
            "checkpoint": str(checkpoint) if checkpoint.is_file() else None,
            "scores_path": result["scores_path"],
            "done": True,
        },
    )
    barrier()
    return result


def _ranked(reporter: Reporter | None, all_ranks: bool) -> Reporter | None:
    """The reporter as this rank calls it: rank 0 only, or every rank with checkpoint paths on rank 0 only."""
    if reporter is None or is_main():
        return reporter
    if not all_ranks:
        return None
    return lambda report: reporter({**report, "checkpoint": None})


def _report(reporter: Reporter | None, report: dict[str, Any]) -> None:
    if reporter is not None:
        reporter(report)


def run_epoch(run: Run, epoch: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Trains epoch ``epoch`` (1-based), evaluates when due; returns the epoch metrics and the evaluation."""
    trainer, device = run.trainer, run.device
    if run.rng is not None:
        restore_rng(run.rng)
    run.train_loader.sampler.set_epoch(epoch - 1)
    reset_peak_memory(device)
    stats = train_epoch(
        run.model,
        run.train_loader,
        run.optimizer,
        run.scheduler,
        device,
        epoch=epoch,
        scaler=run.scaler,
        amp_dtype=run.amp_dtype,
        clip_grad=trainer["clip_grad"],
        max_steps=trainer["max_steps_per_epoch"],
        batchnorm=trainer["batchnorm"],
        accumulation=run.accumulation,
        seed=run.config["seed"],
    )
    run.rng = capture_rng()
    run.epoch, run.global_step = epoch, run.global_step + stats["steps"]
    metrics = {k: stats[k] for k in ("train_loss", "train_top1", "lr", "clips_per_s")}
    metrics["epoch_time_s"] = stats["seconds"]
    evaluation = None
    if epoch % trainer["eval_every"] == 0 or epoch == trainer["epochs"]:
        evaluation = _evaluate(run, run.val_loader)
        metrics.update({k: evaluation[k] for k in VAL_KEYS})
    memory = all_reduce(torch.tensor([peak_memory_mb(device)], dtype=torch.float64), device, op="max")
    metrics["peak_memory_mb"] = float(memory.item())
    metrics["bad_files"] = _bad_files(run)
    run.history.append({"epoch": epoch, **metrics})
    log.info("epoch %d/%d: %s", epoch, trainer["epochs"], _format(metrics))
    return metrics, evaluation


def _evaluate(run: Run, loader) -> dict[str, Any]:
    return evaluate(
        run.model,
        loader,
        run.device,
        amp_dtype=run.amp_dtype,
        max_clips_per_forward=run.train_loader.batch_size,
        class_names=list(run.train_loader.dataset.class_names),
    )


def _bad_files(run: Run) -> int:
    """Distinct bad files seen so far by any rank in the training and evaluation datasets."""
    report = run.train_loader.dataset.bad_files.epoch_report()
    for path, reason in report.new_files.items():
        log.warning("bad training file skipped: %s (%s)", path, reason)
    files = set()
    for loader in (run.train_loader, run.val_loader, run.test_loader):
        files |= set(loader.dataset.bad_files.files())
    return len(set().union(*all_gather_objects(files)))


def _format(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def maybe_checkpoint(run: Run, path: Path) -> str | None:
    """Writes ``path`` (rank 0) when the epoch is due (``checkpoint_every``, and the last epoch)."""
    trainer = run.trainer
    if run.epoch % trainer["checkpoint_every"] and run.epoch != trainer["epochs"]:
        return None
    rng = all_gather_objects(run.rng)
    if is_main():
        save_checkpoint(path, checkpoint_state(run, rng))
    return str(path)


def checkpoint_state(run: Run, rng: list[dict[str, Any]]) -> dict[str, Any]:
    """The checkpoint of a run at the end of its epoch ``run.epoch`` (see ``ean.train.checkpoint``)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": run.epoch,
        "global_step": run.global_step,
        "model": run.net.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng,
        "history": run.history,
        "config": json.dumps(run.config, sort_keys=True, default=str),
        "world_size": world_size(),
        "code_version": ean.__version__,
    }


def resume(run: Run, path: Path) -> bool:
    """Continues ``run`` from the checkpoint at ``path`` if rank 0 sees one; returns whether it did."""
    if not broadcast_object(path.is_file()):
        return False
    state = load_checkpoint(path)
    _check_same_version(state.get("code_version"), path)
    _check_same_run(run.config, json.loads(state["config"]), path)
    run.net.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    _restore_schedule(run.scheduler, state["schedule"])
    if state["scaler"]:
        run.scaler.load_state_dict(state["scaler"])
    run.epoch, run.global_step, run.history = state["epoch"], state["global_step"], list(state["history"])
    if state["world_size"] == world_size():
        run.rng = state["rng"][rank()]
    else:
        warnings.warn(
            f"{path} was written by {state['world_size']} ranks, this run has {world_size()}: it continues, "
            "but not bit-exactly (data order and augmentation differ)",
            stacklevel=2,
        )
    log.info("resumed from %s after epoch %d", path, run.epoch)
    return True


def _restore_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, saved: dict[str, Any]) -> None:
    """Restores the schedule's step, and sets the learning rates from this run's own schedule at that step: a
    run trained longer (``epochs`` grown; a cosine then spans the new length) must not continue on the saved
    schedule, whose parameters ``LambdaLR`` would restore with its state."""
    scheduler.load_state_dict({**saved, "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
    groups = scheduler.optimizer.param_groups
    for group, base, factor in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * factor(scheduler.last_epoch)


def _check_same_version(saved: str | None, path: Path) -> None:
    """Refuses a checkpoint written by another code version: what a config computes may differ between them (the
    version is part of every trial key; the README's version notes say what changed)."""
    if saved != ean.__version__:
        written = f"ean {saved}" if saved else "ean 0.4.2 or older"
        raise ResumeError(
            f"{path} was written by {written}, this is ean {ean.__version__}, and what a config computes differs "
            "between versions: use another workdir, or delete the checkpoint to start afresh"
        )


def _check_same_run(current: dict[str, Any], saved: dict[str, Any], path: Path) -> None:
    """Refuses a checkpoint of another computation; where files lie, loader workers or threads may differ."""
    from ean.trial import resume_differences  # ean.trial builds on ean.train: imported when first needed

    differ = resume_differences(saved, current, world_size())
    if differ:
        raise ResumeError(
            f"{path} belongs to another run; differences: {'; '.join(differ)}. Use another workdir, or delete the "
            "checkpoint to start afresh"
        )


def final_evaluation(run: Run, workdir: Path, last_eval: dict[str, Any] | None) -> dict[str, Any]:
    """Evaluates with the data config's protocol, writes the scores (rank 0); returns fit's result."""
    data = run.config["data"]
    clips, crops = int(data.get("test_clips") or 1), int(data.get("test_crops") or 1)
    reuse = run.test_loader is run.val_loader and last_eval is not None
    evaluation = last_eval if reuse else _evaluate(run, run.test_loader)
    scores_path = workdir / SCORES_PATH
    if is_main():
        keys = ("scores", "labels", "video_index", "class_names")
        write_scores(scores_path, *(evaluation[k] for k in keys))
    protocol = f"{clips} clip{'s' * (clips > 1)} x {crops} crop{'s' * (crops > 1)}"
    log.info("test (%s): top1 %.2f, top5 %.2f", protocol, evaluation["val_top1"], evaluation["val_top5"])
    return {
        "top1": evaluation["val_top1"],
        "top5": evaluation["val_top5"],
        "test_loss": evaluation["val_loss"],
        "mean_class_top1": evaluation["mean_class_top1"],
        "per_class_top1": evaluation["per_class_top1"],
        "scores_path": str(scores_path),
        "epochs": run.epoch,
        "history": list(run.history),
        "num_videos": evaluation["num_videos"],
        "protocol": protocol,
    }
