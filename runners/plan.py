"""A study's plan: one trial per (row, seed) (per dataset column too, where the spec compares ``datasets``),
each with its resolved config, its recipe and its trial key.

``ean.trial`` owns what a config means: its checks, its recipe and what decides its result (the trial key's
input). This module composes the configs, asks ``ean.trial`` about each, and collects every problem.
A trial whose key already has a FINISHED run is cached (this study) or reused (another study).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import ean
from ean.data.identity import data_fingerprint
from ean.models.pretrained import NAMED_WEIGHTS
from ean.trial import protocol_of, trial_key, trial_recipe
from runners.cache import DiskCache
from runners.compose import Composer, CompositionError
from runners.validate import check_trial_config, devices_of, train_config
from study import mlflow_schema as S
from study.spec import Protocol, Row, StudySpec


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
        counts: the network's Params and MACs, once counted (``runners.plan.count_trials``).
        evaluates: for an evaluation row's trial, the key of the training it evaluates again (the same row
            and seed of the evaluated row); ``None`` for a trial that trains.
        checkpoint: for an evaluation, the training's final checkpoint, once it is known (its run's tag, or
            its working folder): the evaluation starts from it.
        column: the dataset column of a study that compares ``datasets`` (its registry name); ``""`` otherwise.
        generation: how many FINISHED runs of the key this study had when a ``--rerun`` planned it (0
            otherwise): a rerun trains from scratch in a folder of its own (``runners.scheduler.workdir_of``),
            and an interrupted rerun, run again with ``--rerun``, resumes there.
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

    @property
    def name(self) -> str:
        return S.run_name(self.study, self.row.id, self.seed, self.column)


def absolute_paths(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """Makes the data root (and other known path keys) absolute: Ray workers do not share the cwd."""
    data = config.get("data", {})
    for key in ("root", "frames_root"):
        if data.get(key):
            data[key] = str((base / str(data[key])).resolve())
    model = config.get("model", {})
    if isinstance(model.get("pretrained"), str) and model["pretrained"] not in NAMED_WEIGHTS:
        model["pretrained"] = str((base / model["pretrained"]).resolve())
    return config


def row_overrides(
    spec: StudySpec, row: Row, profile: list[str], cli: list[str], seed: int, profile_name: str | None = None
) -> list[str]:
    """The Hydra overrides of one trial, in order: spec, profile, row, the row's refinement of the profile
    ``profile_name``, command line, seed."""
    refined = row.profiles.get(profile_name, ()) if profile_name else ()
    return [*spec.overrides, *profile, *row.overrides, *refined, *cli, f"seed={seed}"]


def evaluation_key(training_key: str, protocol: str) -> str:
    """The key of evaluating a training's checkpoint under ``protocol`` (``"2x1"``): what is computed is the
    training's and the protocol (the code version is in the training's key)."""
    return "ev" + hashlib.sha256(f"{training_key}:{protocol}".encode()).hexdigest()[:14]


def protocol_overrides(protocol: Protocol) -> list[str]:
    """The data overrides that test with ``protocol``."""
    return [f"data.test_clips={protocol.clips}", f"data.test_crops={protocol.crops}"]


def evaluation_trial(
    spec: StudySpec, row: Row, training: Trial, config: dict[str, Any], require_files: bool = True
) -> tuple[Trial | None, list]:
    """The trial of an evaluation row at ``training``'s seed: the training's config tested with the row's
    protocol, keyed by the training and the protocol."""
    wanted = row.protocol.tag if row.protocol else spec.protocol.tag
    problems = check_trial_config(config, require_files)
    if not problems and protocol_of(config["data"]) != wanted:
        problems.append(f"the data config's protocol {protocol_of(config['data'])} is not the row's {wanted}")
    if problems:
        return None, problems
    trained = train_config(config)
    devices = devices_of(config)
    recipe = trial_recipe(trained, devices)
    key = evaluation_key(training.key, wanted)
    trial = Trial(spec.name, row, training.seed, config, key, training.data_fingerprint, recipe, evaluates=training.key)
    return trial, []


def plan_trial(
    spec: StudySpec, row: Row, seed: int, config: dict[str, Any], require_files: bool = True
) -> tuple[Trial | None, list[str]]:
    """The trial of a composed, absolute config, or the problems that stop it (``require_files=False``: the
    data and weights need not be on this machine; its keys then name no data contents)."""
    problems = check_trial_config(config, require_files)
    if not problems and protocol_of(config["data"]) != spec.protocol.tag:
        problems.append(
            f"the spec's protocol {spec.protocol.tag} (clips x crops) differs from the data config's "
            f"{protocol_of(config['data'])} (data.test_clips x data.test_crops): the report would find no run; "
            "set one to the other"
        )
    if problems:
        return None, problems
    devices, trained = devices_of(config), train_config(config)
    fingerprint = data_fingerprint(config["data"])
    key = trial_key(trained, devices, fingerprint)
    return Trial(spec.name, row, seed, config, key, fingerprint, trial_recipe(trained, devices)), []


def build_plan(
    spec: StudySpec,
    profile: list[str],
    cli_overrides: list[str],
    seeds: list[int],
    base: Path,
    require_files: bool = True,
    profile_name: str | None = None,
) -> list[Trial]:
    """Composes and checks every (row, seed) of the spec, on each of its dataset columns; raises ``PlanError``
    listing all problems. ``require_files=False`` plans without the data and weights files (to estimate the cost
    elsewhere); ``profile_name``: the profile ``profile`` is, whose refinements a dataset column and a row add."""
    trials, problems = [], {}
    if len(set(seeds)) != len(seeds):
        raise PlanError(spec.source, [f"seeds {list(seeds)} name a seed twice: each (row, seed) is one trial"])
    try:
        composer = Composer()
    except CompositionError as err:  # the config folder itself breaks the data-only policy
        raise PlanError(spec.source, [str(err)]) from None
    with composer:
        for column in spec.columns_of_data:
            refined = spec.datasets.get(column, {}).get(profile_name, ()) if column else ()
            view = spec.on_dataset(column)
            found = _plan_column(
                view, [*profile, *refined], profile_name, cli_overrides, seeds, base, require_files, composer
            )
            trials += [dataclasses.replace(t, column=column) for t in found[0]]
            for problem, ids in found[1].items():
                problems.setdefault(problem, []).extend(i for i in ids if i not in problems.get(problem, []))
    problems.update(_same_networks(trials))
    if problems:
        raise PlanError(spec.source, [f"{_rows(ids, spec)}: {text}" for text, ids in problems.items()])
    return trials


def _plan_column(
    spec: StudySpec,
    profile: list[str],
    profile_name: str | None,
    cli_overrides: list[str],
    seeds: list[int],
    base: Path,
    require_files: bool,
    composer: Composer,
) -> tuple[list[Trial], dict[str, list[str]]]:
    """The trials of a study of one dataset (a dataset column's view, ``StudySpec.on_dataset``) and the
    problems found, each with the ids of its rows."""
    trials: list[Trial] = []
    problems: dict[str, list[str]] = {}
    for row in (r for r in spec.rows if r.trains or r.evaluate):
        trained = spec.row(row.evaluate) if row.evaluate else row
        extra = protocol_overrides(row.protocol) if row.evaluate else []
        for seed in seeds:
            try:
                overrides = row_overrides(spec, trained, profile, cli_overrides, seed, profile_name)
                config = composer.compose([*overrides, *extra])
            except CompositionError as err:
                problems.setdefault(str(err), []).append(row.id)
                break
            config = absolute_paths(config, base)
            if row.evaluate:
                training = next((t for t in trials if t.row.id == trained.id and t.seed == seed), None)
                if training is None:  # the evaluated row has problems of its own, reported there
                    break
                trial, row_problems = evaluation_trial(spec, row, training, config, require_files)
            else:
                trial, row_problems = plan_trial(spec, row, seed, config, require_files)
            for problem in row_problems:
                problems.setdefault(problem, []).append(row.id)
            if trial is None:
                break
            trials.append(trial)
    return trials, problems


def _same_networks(trials: list[Trial]) -> dict[str, list[str]]:
    """Rows (or one row on several dataset columns) of a study whose trials compute the same thing (same key):
    one would train twice."""
    cells: dict[str, list[tuple[str, str]]] = {}
    for trial in trials:
        ids = cells.setdefault(trial.key, [])
        if (trial.row.id, trial.column) not in ids:
            ids.append((trial.row.id, trial.column))
    problems = {}
    for key, ids in cells.items():
        if len(ids) < 2:
            continue
        columns = [c for _, c in ids]
        if len({r for r, _ in ids}) == 1:  # one row, several dataset columns on the same data
            text = (
                f"trains the same network on the same data in dataset columns {', '.join(columns)} (trial key {key}): "
                "a profile that replaces the data must tell the columns apart (the spec's datasets: {NAME: "
                "{PROFILE: [overrides]}})"
            )
        else:
            text = f"build the same network with the same recipe (trial key {key}): keep one of these rows"
        problems[text] = list(dict.fromkeys(r for r, _ in ids))
    return problems


def _rows(ids: list[str], spec: StudySpec) -> str:
    if len(ids) == len(spec.rows) > 1:
        return "every row"
    return ("row " if len(ids) == 1 else "rows ") + ", ".join(f"'{i}'" for i in ids)


def count_trials(trials: list[Trial], cache: DiskCache | None = None) -> None:
    """Sets each trial's ``counts``: Params and FLOPs (MACs) of its model, counted once per network as built
    (random weights) by ``ean.profile``, and kept in the on-disk cache (``runners.cache``) under the network's
    identity and the code and torch versions."""
    if not trials:
        return
    import torch

    from ean.models import network_identity
    from ean.profile import profile_model, without_weights

    cache = cache or DiskCache("counts")
    for trial in trials:
        model = without_weights(trial.config["model"])
        key = {"network": network_identity(model), "code": ean.__version__, "torch": torch.__version__}
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
