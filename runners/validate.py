"""Checks of a composed trial config before anything runs: code references, resources, then ``ean``'s checks.

Imports no torch until a config is checked: a study's driver and its Tune trainable import this module.
"""

from __future__ import annotations

from typing import Any

from study.policy import value_problems

#: The orchestration's own section of a trial config; ``ean`` owns every other section.
RESOURCES = "resources"
RESOURCE_KEYS = ("cpus", "gpus", "workers")


def train_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config ``ean`` takes: the trial's config less the orchestration's ``resources``, with
    ``trainer.device: auto`` made the device those give it: a GPU when it asks for one, else the CPU (Ray
    leaves every GPU visible to a trial that reserved none; the key holds the precision it computes in)."""
    trained = {k: v for k, v in config.items() if k != RESOURCES}
    trainer = trained.get("trainer")
    if isinstance(trainer, dict) and trainer.get("device", "auto") == "auto":
        gpus = config.get(RESOURCES, {}).get("gpus", 0)
        trained["trainer"] = {**trainer, "device": "cuda" if _number(gpus) and gpus > 0 else "cpu"}
    return trained


def devices_of(config: dict[str, Any]) -> int:
    """How many devices (DDP workers) carry one trial's batch."""
    return int(config.get(RESOURCES, {}).get("workers", 1))


def check_trial_config(config: dict[str, Any], require_files: bool = True) -> list[str]:
    """All problems of one resolved trial config (empty when it can run).

    ``compose_config`` checked the tree before resolving; the resolved values are checked again with the same
    policy, since interpolation can put together a text that a later config would call (``${a}${b}``).
    ``require_files=False``: the data and weights files need not be on this machine (``ean.trial``)."""
    from ean.trial import check_trial_config as check_ean_config  # imports torch: not at a driver's start

    problems = value_problems(config)
    resources = _check_resources(config)
    devices = 1 if resources else devices_of(config)
    return problems + resources + check_ean_config(train_config(config), devices, require_files)


def _check_resources(config: dict) -> list[str]:
    res = config.get(RESOURCES, {})
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
    device = config.get("trainer", {}).get("device") if isinstance(config.get("trainer"), dict) else None
    if device == "cuda" and not res.get("gpus", 0):
        problems.append(
            "trainer.device = 'cuda' but resources.gpus = 0: the trial would use a GPU Ray did not give it; "
            "ask for one (resources=gpu, or resources.gpus=1) or leave trainer.device at auto"
        )
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
