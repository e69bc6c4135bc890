"""Checks of a composed trial config before anything runs: every problem named with the valid choices."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ean.data import DATASETS
from ean.data.clip_dataset import ClipDataset
from ean.models import check_model_config

TOP_LEVEL = ("model", "data", "trainer", "resources", "seed")
RESOURCE_KEYS = ("cpus", "gpus", "workers")
DATA_COMMON = ("dataset", "root", "num_workers", "media", "frames_root")
NOT_CONFIGURABLE = ("self", "split", "records", "class_names", "train")


def find_code_references(value: Any, path: str = "") -> list[str]:
    """Paths of config entries that would name Python code (``_target_`` keys)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in ("_target_", "_partial_", "_args_"):
                found.append(where)
            found += find_code_references(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += find_code_references(item, f"{path}[{i}]")
    return found


def check_trial_config(config: dict[str, Any]) -> list[str]:
    """All problems of one resolved trial config (empty when it can run)."""
    problems = [f"'{p}' names Python code; specs choose registered names only" for p in find_code_references(config)]
    unknown = sorted(set(config) - set(TOP_LEVEL))
    if unknown:
        problems.append(f"unknown top-level keys {unknown}; valid: {', '.join(TOP_LEVEL)}")
    for check in (_check_model, _check_data, _check_trainer, _check_resources, _check_seed):
        problems += check(config)
    return problems


def _check_model(config: dict) -> list[str]:
    try:
        check_model_config(config.get("model", {}))
    except (ValueError, LookupError) as err:
        return [f"model: {err}"]
    return []


def dataset_options(name: str) -> list[str]:
    """The data config keys a dataset accepts."""
    params = dict(inspect.signature(DATASETS.get(name)).parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        params.update(inspect.signature(ClipDataset).parameters)
    keys = [k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return sorted({*DATA_COMMON, *keys} - set(NOT_CONFIGURABLE))


def _check_data(config: dict) -> list[str]:
    data = config.get("data", {})
    name = data.get("dataset")
    try:
        DATASETS.check(name)
    except LookupError as err:
        return [f"data: {err}"]
    valid = dataset_options(name)
    unknown = sorted(set(data) - set(valid))
    problems = [f"data: unknown keys {unknown} for dataset '{name}'; valid: {', '.join(valid)}"] if unknown else []
    root = data.get("root")
    if name != "synthetic" and (not root or not Path(root).exists()):
        doc = (inspect.getdoc(DATASETS.get(name)) or "").splitlines()
        expected = f" ({doc[0].rstrip('.')})" if doc else ""
        problems.append(
            f"data.root '{root}' does not exist: dataset '{name}'{expected} is expected there. "
            f"Set data.root=PATH (or use data=synthetic for generated data)"
        )
    if config.get("model", {}).get("num_segments") != data.get("num_segments"):
        problems.append("data.num_segments differs from model.num_segments")
    return problems


def _check_trainer(config: dict) -> list[str]:
    try:
        from ean.train import resolve_trainer_config
    except ImportError:  # pragma: no cover - ean.train is part of the package
        return []
    try:
        resolve_trainer_config(config.get("trainer", {}))
    except (ValueError, LookupError) as err:
        return [f"trainer: {err}"]
    return []


def _check_resources(config: dict) -> list[str]:
    res = config.get("resources", {})
    problems = []
    unknown = sorted(set(res) - set(RESOURCE_KEYS))
    if unknown:
        problems.append(f"resources: unknown keys {unknown}; valid: {', '.join(RESOURCE_KEYS)}")
    if not _number(res.get("cpus", 1)) or res.get("cpus", 1) <= 0:
        problems.append(f"resources.cpus = {res.get('cpus')!r}; must be a number > 0")
    if not _number(res.get("gpus", 0)) or res.get("gpus", 0) < 0:
        problems.append(f"resources.gpus = {res.get('gpus')!r}; must be a number >= 0 (fractions share a GPU)")
    workers = res.get("workers", 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        problems.append(f"resources.workers = {workers!r}; must be an integer >= 1 (> 1 runs DDP)")
    return problems


def _check_seed(config: dict) -> list[str]:
    seed = config.get("seed")
    return [] if isinstance(seed, int) and not isinstance(seed, bool) else [f"seed = {seed!r}; must be an integer"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
