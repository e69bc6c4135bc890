"""A study's plan: one trial per (row, seed), each with its resolved config and a stable trial key.

The trial key is a hash of everything that decides a trial's result: the resolved config (less the keys
that only decide how fast it runs: resources, loader workers, threads) and the data fingerprint. A trial
whose key already has a FINISHED run is cached.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ean
from reports.spec import Row, StudySpec
from runners.compose import CompositionError, compose_config, hydra_context
from runners.validate import check_trial_config

#: Keys that change how fast a trial runs, not what it computes (left out of the trial key).
NON_SEMANTIC = {
    "resources": None,
    "data": ("num_workers", "decode_timeout_s", "decode_threads"),
    "trainer": ("num_threads",),
}
SYNTHETIC_GENERATOR_KEYS = ("num_videos", "num_classes", "size", "seed", "min_frames", "max_frames", "clutter")


class PlanError(ValueError):
    """The spec cannot be planned; ``problems`` lists every problem found (row, value, valid choices)."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing was run:\n{lines}")


@dataclass
class Trial:
    """One cell of the table: a row at a seed.

    Attributes:
        study: the study's name.
        row: the spec row.
        seed: the seed.
        config: the resolved config (plain dict; absolute paths).
        key: the trial key (16 hex digits).
        data_fingerprint: hash of the dataset's identity (annotation files or generator settings).
        state: ``new``, ``cached`` (a FINISHED run exists) or ``resume`` (an unfinished run exists).
        run_id: the MLflow run, once known.
    """

    study: str
    row: Row
    seed: int
    config: dict[str, Any]
    key: str
    data_fingerprint: str
    state: str = "new"
    run_id: str | None = None
    profile: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.study}/{self.row.id}/seed{self.seed}"


def semantic_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config less the keys that do not change a trial's result."""
    out = copy.deepcopy(config)
    for section, keys in NON_SEMANTIC.items():
        if keys is None:
            out.pop(section, None)
        else:
            for key in keys:
                out.get(section, {}).pop(key, None)
    return out


def trial_key(config: dict[str, Any], data_fingerprint: str) -> str:
    """A stable hash of a trial's semantic config, data fingerprint and code version (16 hex digits).

    ``ean.__version__`` is part of the key: bump it when a change alters what a config computes.
    """
    payload = json.dumps(
        {"config": semantic_config(config), "data": data_fingerprint, "code": ean.__version__}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def data_fingerprint(data_cfg: dict[str, Any]) -> str:
    """Identity of a dataset: its generator settings (synthetic) or its annotation files' contents."""
    digest = hashlib.sha256(str(data_cfg.get("dataset")).encode())
    if data_cfg.get("dataset") == "synthetic":
        settings = {k: data_cfg.get(k) for k in SYNTHETIC_GENERATOR_KEYS}
        digest.update(json.dumps(settings, sort_keys=True).encode())
    else:
        root = Path(str(data_cfg.get("root", "")))
        for path in sorted(root.glob("*")) if root.is_dir() else []:
            if path.is_file() and path.suffix in (".csv", ".json", ".txt"):
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()[:16]


def absolute_paths(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """Makes the data root (and other known path keys) absolute: Ray workers do not share the cwd."""
    data = config.get("data", {})
    for key in ("root", "frames_root"):
        if data.get(key):
            data[key] = str((base / str(data[key])).resolve())
    model = config.get("model", {})
    if isinstance(model.get("pretrained"), str) and model["pretrained"] != "torchvision":
        model["pretrained"] = str((base / model["pretrained"]).resolve())
    return config


def row_overrides(spec: StudySpec, row: Row, profile: list[str], cli: list[str], seed: int) -> list[str]:
    """The Hydra overrides of one trial, in order: spec, profile, row, command line, seed."""
    return [*spec.overrides, *profile, *row.overrides, *cli, f"seed={seed}"]


def build_plan(
    spec: StudySpec, profile: list[str], cli_overrides: list[str], seeds: list[int], base: Path
) -> list[Trial]:
    """Composes and checks every (row, seed) of the spec; raises ``PlanError`` listing all problems."""
    trials, problems = [], {}
    with hydra_context():
        for row in (r for r in spec.rows if not r.ensemble):
            for seed in seeds:
                try:
                    config = compose_config(row_overrides(spec, row, profile, cli_overrides, seed))
                except CompositionError as err:
                    problems.setdefault(str(err), []).append(row.id)
                    break
                config = absolute_paths(config, base)
                row_problems = check_trial_config(config)
                for problem in row_problems:
                    problems.setdefault(problem, []).append(row.id)
                if row_problems:
                    break
                fingerprint = data_fingerprint(config["data"])
                trials.append(Trial(spec.name, row, seed, config, trial_key(config, fingerprint), fingerprint))
    if problems:
        raise PlanError(spec.source, [f"{_rows(ids, spec)}: {text}" for text, ids in problems.items()])
    return trials


def _rows(ids: list[str], spec: StudySpec) -> str:
    if len(ids) == len(spec.rows) > 1:
        return "every row"
    return ("row " if len(ids) == 1 else "rows ") + ", ".join(f"'{i}'" for i in ids)
