"""What runs inside a Ray Tune trial: ``ean.train.fit`` on a plain config, reporting every epoch.

A trial's working directory (checkpoints, scores, ``final.json``) lies under the study's storage path,
keyed by the trial key, so a retried or resumed trial finds its last checkpoint there (``fit`` resumes
from it; ``starts.jsonl`` there records each attempt's first epoch). With ``resources.workers`` > 1 the trial
runs DDP through Ray Train's TorchTrainer; its rank 0 appends each epoch's metrics to ``events.jsonl``, which
the trial reports to Tune as they appear.
"""

from __future__ import annotations

import json
import os
import shutil
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ray import tune

from runners.epochs import FINAL_KEY, RAY_NODE_KEY, EpochReport, is_number
from runners.validate import devices_of, train_config

FINAL_FILE = "final.json"
EVENTS_FILE = "events.jsonl"
ERROR_FILE = "error.txt"  # the traceback of an error not retried (``_run_fit``)
EVENT_POLL_S = 1.0


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The values of ``metrics`` that are numbers, as floats."""
    return {k: float(v) for k, v in metrics.items() if is_number(v)}


def epoch_report(event: dict[str, Any]) -> EpochReport:
    """The report of one epoch from ``ean.train.fit``'s event (``{"epoch", "metrics", ...}``)."""
    return EpochReport(int(event["epoch"]), numeric(event["metrics"]))


def _run_fit(config: dict[str, Any], workdir: Path, report) -> dict[str, Any] | None:
    """Runs fit; returns its result, or None after reporting, as the trial's final result, an error that a
    retry would meet again: a NaN loss (the same data gives the same NaN), or a ``ValueError`` (ean's errors of
    config, data and weights among them: too many bad files, a value out of range). Its traceback is kept
    in ``ERROR_FILE``; a crash (a killed process, an exception of another kind) is retried by Tune."""
    from ean.train import NonFiniteLossError, fit

    try:
        return fit(train_config(config), workdir, report)
    except (NonFiniteLossError, ValueError) as err:
        return _fail(workdir, str(err) if isinstance(err, NonFiniteLossError) else _keep_error(workdir, err))


def _fail(workdir: Path, why: str) -> None:
    """Reports ``why`` as the trial's final result, an error not retried."""
    tune.report({FINAL_KEY: 1.0, "failed": 1.0})
    _write_final(workdir, {"error": why}, with_node=False)


def _keep_error(workdir: Path, err: ValueError, rank: int | None = None) -> str:
    """Keeps the traceback of an error not retried in ``ERROR_FILE`` (a DDP rank's in ``error_rank<r>.txt``);
    returns the trial's error line, which names it."""
    name = ERROR_FILE if rank is None else f"error_rank{rank}.txt"
    tmp = workdir / f"{name}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(traceback.format_exc())
    tmp.replace(workdir / name)
    where = "" if rank is None else f"rank {rank}; "
    return f"{type(err).__name__}: {err} (not retried: it would fail again; {where}traceback: {workdir / name})"


def error_written(workdir: Path) -> str | None:
    """The error an attempt of the trial wrote as its result (``final.json``), or None."""
    try:
        return json.loads((workdir / FINAL_FILE).read_text()).get("error")
    except (OSError, ValueError, AttributeError):
        return None


def _write_final(workdir: Path, result: dict[str, Any], with_node: bool = True) -> None:
    """Writes the trial's result (atomically: DDP ranks may write at once), with the Ray node of the process that
    computed it (kept when the result has one: a DDP trial's is its rank 0's)."""
    result = {RAY_NODE_KEY: _ray_node(), **result} if with_node else result
    tmp = workdir / f"{FINAL_FILE}.{uuid.uuid4().hex}.tmp"  # ranks on other nodes may share a pid
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(workdir / FINAL_FILE)


def _ray_node() -> str | None:
    """The id of the Ray node this process runs on (None outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def start_from(checkpoint: str | None, workdir: Path, required: bool = True) -> None:
    """An evaluation trial starts from its training's final checkpoint (copied in once; ``fit`` resumes from
    it with nothing left to train and tests it with the trial's protocol); a training, from the checkpoint
    another study left of the same key (``runners.scheduler.left_elsewhere``; not ``required``: gone since,
    the training starts from scratch)."""
    from ean.train.fit import CHECKPOINT_PATH

    target = workdir / CHECKPOINT_PATH
    if checkpoint and not required and not Path(checkpoint).is_file():
        return  # another study's checkpoint removed since the plan: the training starts from scratch
    if checkpoint and not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(checkpoint, tmp)
        tmp.replace(target)


def earlier_result(workdir: Path) -> dict[str, Any] | None:
    """The result an earlier attempt of the trial wrote (``final.json``) when it was not an error: its driver
    died before recording it, or the process before reporting it. None when there is none."""
    try:
        result = json.loads((workdir / FINAL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return None if "error" in result else result


def trial_function(tune_config: dict[str, Any]) -> None:
    """The Tune trainable: ``tune_config["trial"]`` holds the config, the workdir and the trial's name. A result
    an earlier attempt wrote is reported as it is: the trial is neither trained nor tested again."""
    trial = tune_config["trial"]
    config, workdir = trial["config"], Path(trial["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    result = earlier_result(workdir)
    if result is None:
        (workdir / FINAL_FILE).unlink(missing_ok=True)  # an error: this attempt tries again
        for kept in [workdir / ERROR_FILE, *workdir.glob("error_rank*.txt")]:  # the error's traceback with it
            kept.unlink(missing_ok=True)
        result = _attempt(trial, config, workdir)
        if result is not None:
            _write_final(workdir, result)
    if result is not None:
        tune.report({FINAL_KEY: 1.0, **numeric(result)})


def key_problem(trial: dict[str, Any]) -> str | None:
    """Why what this process would compute is not what the trial's key names (None when it is): the key's inputs
    (``ean.trial.key_inputs``: the network with its weights files' digests, the data's fingerprint, the code
    version) made here differ from the plan's. A weights file or the annotations replaced since the plan, or a
    node with other files or another ``ean``: trained, the trial's result would be filed under a key that names
    other inputs."""
    planned = trial.get("key_inputs")
    if planned is None:
        return None
    from ean.models.pretrained import PretrainedWeightsError
    from ean.trial import key_changes, key_inputs

    config = trial["config"]
    try:
        here = key_inputs(train_config(config), devices_of(config))
    except PretrainedWeightsError as err:  # a weights file not on this node (a FileNotFoundError)
        return f"trial {trial['name']}: {err}"
    changes = key_changes(planned, here)
    if not changes:
        return None
    node = _ray_node() or "this machine"
    root = config["data"].get("root")
    if any(c.startswith("data:") for c in changes) and root and not os.path.isdir(root):
        return f"trial {trial['name']}: the data root {root} is not on {node} (the plan read the data there)"
    return (
        f"what trial {trial['name']} would compute on {node} is not what its key {trial['key']} names "
        f"(planned -> here): {'; '.join(changes[:4])}{' ...' if len(changes) > 4 else ''}. An input changed "
        "since the study was planned (a weights file or the annotations replaced), or this node has other files "
        "or another version of ean; run the study again to plan it with what is there now"
    )


def _attempt(trial: dict[str, Any], config: dict[str, Any], workdir: Path) -> dict[str, Any] | None:
    """Checks the trial's key (``key_problem``), then trains (or resumes) and tests it; its result, or None after
    an error a retry would meet again (reported)."""
    ddp = config.get("resources", {}).get("workers", 1) > 1
    if not ddp:  # a DDP trial's ranks check the key where they run (``ddp_rank``)
        try:
            problem = key_problem(trial)
        except ValueError as err:  # a data file that cannot be read here: a retry would meet it again
            problem = _keep_error(workdir, err)
        if problem:
            return _fail(workdir, problem)
    start_from(trial.get("init_checkpoint"), workdir, required=bool(trial.get("evaluates")))
    if ddp:
        return _run_ddp(trial)

    def report(event: dict[str, Any]) -> None:
        if event.get("done"):
            return  # the final result is fit's return value
        tune.report(epoch_report(event).to_dict())

    return _run_fit(config, workdir, report)


def _ddp_worker(trial: dict[str, Any]) -> None:
    """One DDP rank inside Ray Train (the process group is initialised by TorchTrainer): ``ddp_rank`` of
    ``ean.train.fit``."""
    from ean.train import fit

    ddp_rank(trial, fit)


def ddp_rank(trial: dict[str, Any], fit) -> None:
    """One DDP rank's training with ``fit`` (``ean.train.fit``'s signature).

    Rank 0 appends each epoch to ``events.jsonl``. A NaN loss (every rank agrees on it) ends the trial with its
    error in ``final.json`` instead of an exception, so Ray Train does not retry it. A ``ValueError``, which a
    retry would meet again, may come on one rank alone while the others wait for it in a collective: that rank
    writes it to ``final.json`` (its traceback beside it) and raises, so that Ray Train ends the other ranks at
    once; a restart of the ranks by Ray Train (``FailureConfig``) then finds the error written and ends without
    training, and ``_run_ddp`` fails the trial with it.
    """
    from ean.train import NonFiniteLossError
    from ean.train.distributed import broadcast_object, rank

    workdir = Path(trial["workdir"])
    # an earlier start of the ranks in this attempt met an error not retried: rank 0 reads it for every rank, so
    # that they all agree (on shared storage a node may see a new file later than another)
    if broadcast_object(error_written(workdir) is not None if rank() == 0 else None):
        return
    events = workdir / EVENTS_FILE

    def report(event: dict[str, Any]) -> None:  # called on rank 0 only
        if event.get("done"):
            return
        with events.open("a") as f:
            f.write(json.dumps(epoch_report(event).to_dict()) + "\n")

    try:
        problem = key_problem(trial)  # on this rank's node: its files and its ean
        if problem:
            raise ValueError(problem)
        result: dict[str, Any] = fit(train_config(trial["config"]), workdir, report)
    except NonFiniteLossError as err:
        result = {"error": str(err)}
    except ValueError as err:
        _write_final(workdir, {"error": _keep_error(workdir, err, rank())}, with_node=False)
        raise
    if rank() == 0:
        _write_final(workdir, result)


def _run_ddp(trial: dict[str, Any], worker=_ddp_worker) -> dict[str, Any] | None:
    """Runs the trial's DDP ranks (``worker``, one per rank) through Ray Train, reporting each epoch to Tune as
    rank 0 writes it.

    A crashed worker restarts the group (``FailureConfig``), which resumes from the trial's checkpoint; an error
    a rank wrote as the trial's result (``ddp_rank``) fails the trial instead, whether or not Ray Train restarted
    the ranks. ``events.jsonl`` is kept across attempts: a retry reports the earlier epochs again and the driver
    logs each epoch once.
    """
    from ray.train import FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    workdir = Path(trial["workdir"])
    trainer = TorchTrainer(
        worker,
        train_loop_config=trial,
        scaling_config=scaling_config(trial["config"]["resources"]),
        run_config=RunConfig(
            name=f"ddp-{trial['key']}",
            storage_path=str(workdir / "ray_train"),
            failure_config=FailureConfig(max_failures=int(trial.get("max_failures", 0))),
        ),
    )
    with ThreadPoolExecutor(1, thread_name_prefix="ean-ddp") as pool:
        running = pool.submit(trainer.fit)
        offset = 0
        while True:
            ended = running.done()
            offset = _report_events(workdir / EVENTS_FILE, offset)
            if ended:
                break
            wait([running], timeout=EVENT_POLL_S)  # the epochs' events each second; the end at once
        if running.exception() is not None and not error_written(workdir):
            running.result()  # the workers failed beyond their retries (a crash): Tune retries the trial
    final = json.loads((workdir / FINAL_FILE).read_text())
    if "error" in final:
        tune.report({FINAL_KEY: 1.0, "failed": 1.0})
        return None
    return final


def scaling_config(res: dict[str, Any]):
    """Ray Train's ``ScalingConfig`` of a DDP trial's workers (``resources``: ``workers`` of ``cpus`` and ``gpus``
    each). Under Train v1 (``RAY_TRAIN_V2_ENABLED=0``) its trainer actor would hold a CPU of its own beside rank
    0's, which neither the trial's demand nor the check that a node holds it count (``runners.demand``): it holds
    none (it only waits on the workers), as Train v2's controller does."""
    from ray.train import ScalingConfig

    try:
        from ray.train.v2._internal.constants import is_v2_enabled

        v1 = not is_v2_enabled()
    except ImportError:  # a Ray without Train v2
        v1 = True
    return ScalingConfig(
        num_workers=res["workers"],
        use_gpu=res.get("gpus", 0) > 0,
        resources_per_worker={"CPU": res.get("cpus", 1), "GPU": res.get("gpus", 0)},
        **({"trainer_resources": {"CPU": 0}} if v1 else {}),
    )


def _report_events(path: Path, offset: int) -> int:
    """Reports the whole lines of ``path`` after byte ``offset`` to Tune; returns the new offset."""
    if not path.is_file():
        return offset
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    complete = data[: data.rfind(b"\n") + 1]
    for line in complete.decode().splitlines():
        if line.strip():
            tune.report(json.loads(line))
    return offset + len(complete)
