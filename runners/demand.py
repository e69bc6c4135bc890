"""What a trial holds while it runs, and how many trials run at once by default (no Ray import: the estimate
uses them before any cluster exists)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def worker_bundle(config: Mapping[str, Any]) -> tuple[dict[str, float], int]:
    """(what one worker of a trial holds: CPUs, and GPUs where asked; its workers) from ``resources``."""
    res = config.get("resources", {})
    bundle = {"CPU": float(res.get("cpus", 1))}
    if res.get("gpus", 0):
        bundle["GPU"] = float(res["gpus"])
    return bundle, int(res.get("workers", 1))


def trial_demand(config: Mapping[str, Any]) -> dict[str, float]:
    """What one trial holds while it runs, from its config's ``resources``: CPUs, and GPUs where it asks for
    them, of all its workers together (a DDP trial's own process reserves only a token, its workers the rest)."""
    bundle, workers = worker_bundle(config)
    return {name: workers * amount for name, amount in bundle.items()}


def default_concurrency(cluster: Mapping[str, float], demands: Iterable[Mapping[str, float]]) -> int:
    """Trials at once when ``--max-concurrent`` is not given: as many as the cluster's resources hold of the
    smallest trial, floor(cluster GPUs / GPUs per trial) for GPU trials and floor(cluster CPUs / CPUs per trial)
    (the least of the resources it asks for); at least 1.

    Tune caps a trial that reserves its own devices by itself; a DDP trial reserves only a token, so without
    this cap every one of them would start at once and their workers wait for devices.
    """
    fits = [
        min(math.floor(cluster.get(name, 0.0) / amount + 1e-9) for name, amount in demand.items() if amount > 0)
        for demand in demands
        if any(amount > 0 for amount in demand.values())
    ]
    return max(max(fits, default=1), 1)
