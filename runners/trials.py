"""The trial record: one cell of a study's table (a row at a seed, on a dataset column), its state in the
store, its network's size, and the plan as JSON.

Light on purpose (no torch, no Hydra, no MLflow): a study whose plan comes from the plan cache
(``runners.plan_cache``) and whose trials are all cached never imports what it does not use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import ean
from runners.cache import DiskCache
from study import mlflow_schema as S
from study.spec import Row


class PlanError(ValueError):
    """The spec cannot be planned; ``problems`` lists every problem found (row, value, valid choices)."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing was run:\n{lines}")


class TrialState(str, Enum):
    """Where a trial stands in the store (set by ``runners.tracking.StudyTracker.mark_cached``).

    A ``str`` enum that prints and serialises as its value (``new``, ``cached``, ``reused``, ``resume``): the
    plan's table and JSON and the journal show the same words as before.
    """

    NEW = "new"
    CACHED = "cached"  # this study has a FINISHED run
    REUSED = "reused"  # another study has a FINISHED run (``Trial.source`` names it)
    RESUME = "resume"  # an unfinished run exists and is reopened

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def finished(self) -> bool:
        """Whether a FINISHED run already has the trial's results (here or in another study): nothing trains."""
        return self in (TrialState.CACHED, TrialState.REUSED)


@dataclass(frozen=True)
class ModelCounts:
    """The size of a trial's network as built (random weights), logged as the metrics ``params``/``flops``.

    Attributes:
        params: trainable parameters.
        macs: multiply-accumulates of one clip (what the paper and the table call FLOPs).
    """

    params: int
    macs: int


@dataclass
class Trial:
    """One cell of the table: a row at a seed.

    Attributes:
        study: the study's name.
        row: the spec row.
        seed: the seed.
        config: the resolved config (plain dict; absolute paths).
        key: the trial key (16 hex digits, ``ean.trial.trial_key``).
        data_fingerprint: hash of the dataset's identity (annotation files or generator settings).
        recipe: the training recipe as it will run (``ean.trial.trial_recipe``).
        state: ``TrialState.NEW``, ``CACHED`` (this study has a FINISHED run), ``REUSED`` (another study has
            one: ``source`` names it) or ``RESUME`` (an unfinished run exists).
        run_id: the MLflow run, once known (for ``REUSED``: the source run until this study's run exists).
        source: for ``REUSED``, the name of the run it reuses (``table5/eabs_soitr/seed0``).
        counts: the network's Params and MACs, once counted (``runners.trials.count_trials``).
        evaluates: for an evaluation row's trial, the key of the training it evaluates again (the same row
            and seed of the evaluated row); ``None`` for a trial that trains.
        checkpoint: for an evaluation, the training's final checkpoint, once it is known (its run's tag, or
            its working folder): the evaluation starts from it.
        column: the dataset column of a study that compares ``datasets`` (its registry name); ``""`` otherwise.
        generation: how many FINISHED runs of the key this study had when a ``--rerun`` planned it (0
            otherwise): a rerun trains from scratch in a folder of its own (``runners.scheduler.workdir_of``),
            and an interrupted rerun, run again with ``--rerun``, resumes there.
        epochs_done: for ``RESUME``, the last epoch its run logged, once read
            (``runners.tracking.StudyTracker.note_epochs_done``): the estimate prices the epochs after it.
        key_inputs: what the key of a training trial was made of (``ean.trial.key_inputs``), which the trial
            checks where it runs (``runners.trainable.key_problem``); None for an evaluation.
    """

    study: str
    row: Row
    seed: int
    config: dict[str, Any]
    key: str
    data_fingerprint: str
    recipe: dict[str, Any] = field(default_factory=dict)
    state: TrialState = TrialState.NEW
    run_id: str | None = None
    source: str | None = None
    counts: ModelCounts | None = None
    evaluates: str | None = None
    checkpoint: str | None = None
    generation: int = 0
    column: str = ""
    key_inputs: dict[str, Any] | None = None
    epochs_done: int = 0

    @property
    def name(self) -> str:
        return S.run_name(self.study, self.row.id, self.seed, self.column)


def count_trials(trials: list[Trial], cache: DiskCache | None = None) -> None:
    """Sets each trial's ``counts``: Params and FLOPs (MACs) of its model, counted once per network as built
    (random weights) by ``ean.profile``, and kept in the on-disk cache (``runners.cache``) under the network's
    identity, the code (its version and its sources' digest) and torch's version. Trials counted already
    (``counts`` set) are left as they are."""
    trials = [t for t in trials if t.counts is None]  # a plan from the plan cache may carry its counts
    if not trials:
        return
    import torch

    from ean.models import network_identity
    from ean.profile import profile_model, without_weights
    from runners.code_digest import code_digest

    cache = cache or DiskCache("counts")
    code = [ean.__version__, code_digest()]  # the sources themselves: an edit of a module changes its counts
    for trial in trials:
        model = without_weights(trial.config["model"])
        key = {"network": network_identity(model), "code": code, "torch": torch.__version__}
        counted = cache.get_or_compute(key, lambda model=model: _count(profile_model(model)))
        trial.counts = ModelCounts(params=int(counted["params"]), macs=int(counted["macs"]))


def _count(profile) -> dict[str, int]:
    return {"params": profile.params, "macs": profile.macs}


def plan_json(trials: list[Trial]) -> str:
    """The plan as JSON, one entry per trial with its state, recipe and resolved config (what ``--dry-run
    --json`` prints, and the parent run's ``plan.json``); ``params``/``flops`` are null for a trial not counted."""
    entries = [
        {
            "row": t.row.id,
            "seed": t.seed,
            "trial_key": t.key,
            "state": t.state.value,
            "cached": t.state == TrialState.CACHED,
            "reused_from": t.source,
            "recipe": t.recipe,
            "params": t.counts.params if t.counts is not None else None,
            "flops": t.counts.macs if t.counts is not None else None,
            "config": t.config,
        }
        for t in trials
    ]
    return json.dumps(entries, indent=2)
