"""A study's plan: one trial per (row, seed) (per dataset column too, where the spec compares ``datasets``),
each with its resolved config, its recipe and its trial key.

``ean.trial`` owns what a config means: its checks, its recipe and what decides its result (the trial key's
input). This module composes the configs, asks ``ean.trial`` about each, and collects every problem.
A trial whose key already has a FINISHED run is cached (this study) or reused (another study).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from ean.data.errors import DataError
from ean.data.identity import data_fingerprint
from ean.models.pretrained import NAMED_WEIGHTS, files_elsewhere
from ean.trial import key_inputs, key_of, protocol_key, protocol_of, trial_recipe
from runners.compose import Composer, CompositionError
from runners.trials import ModelCounts, PlanError, Trial, TrialState, count_trials, plan_json
from runners.validate import check_trial_config, devices_of, train_config
from study.spec import Protocol, Row, StudySpec

__all__ = [
    "ModelCounts",
    "PlanError",
    "Trial",
    "TrialState",
    "build_plan",
    "count_trials",
    "evaluation_key",
    "plan_json",
    "row_overrides",
]


def absolute_paths(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """Makes the data root (and the other path keys: the pretrained weights, Faster R-CNN's weights and box cache)
    absolute, ``~`` expanded: Ray workers do not share the cwd. A link is kept as a link (not resolved): the plan
    cache watches the path as given, so a link pointed elsewhere is noticed."""

    def absolute(path: str) -> str:
        return os.path.abspath(base / os.path.expanduser(path))

    data = config.get("data", {})
    for key in ("root", "frames_root"):
        if data.get(key):
            data[key] = absolute(str(data[key]))
    model = config.get("model", {})
    if isinstance(model.get("pretrained"), str) and model["pretrained"] not in NAMED_WEIGHTS:
        model["pretrained"] = absolute(model["pretrained"])
    regions = model.get("region_options")
    if isinstance(regions, dict):  # Faster R-CNN's weights file and its box cache (Ray runs a trial in its folder)
        if isinstance(regions.get("weights"), str) and regions["weights"] != "torchvision":
            regions["weights"] = absolute(regions["weights"])
        if isinstance(regions.get("cache_dir"), str):
            regions["cache_dir"] = absolute(regions["cache_dir"])
    return config


def row_overrides(
    spec: StudySpec, row: Row, profile: list[str], cli: list[str], seed: int, profile_name: str | None = None
) -> list[str]:
    """The Hydra overrides of one trial, in order: spec, profile, row, the row's refinement of the profile
    ``profile_name``, command line, seed."""
    refined = row.profiles.get(profile_name, ()) if profile_name else ()
    return [*spec.overrides, *profile, *row.overrides, *refined, *cli, f"seed={seed}"]


def evaluation_key(training_key: str, protocol: str) -> str:
    """The key of evaluating a training's checkpoint under ``protocol`` (``ean.trial.protocol_key``): what is
    computed is the training's and the protocol (the code version is in the training's key)."""
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
    key = evaluation_key(training.key, protocol_key(wanted))
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
    try:
        fingerprint = data_fingerprint(config["data"])
    except DataError as err:  # annotations that are there but malformed
        return None, [f"data: {err}"]
    inputs = key_inputs(trained, devices, fingerprint)
    trial = Trial(spec.name, row, seed, config, key_of(inputs), fingerprint, trial_recipe(trained, devices))
    trial.key_inputs = inputs
    return trial, []


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
    with composer, contextlib.nullcontext() if require_files else files_elsewhere():
        for column in spec.columns_of_data:
            view, refined = spec.on_dataset(column), spec.refinement(column, profile_name)
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
                for problem in err.problems:
                    problems.setdefault(problem, []).append(row.id)
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
