"""Whether the Ray a study runs on can ever hold its trials' resources.

Tune waits for a trial whose resources no node holds (a GPU trial on a machine without a GPU, 8 CPUs per trial
on a 4-core machine), warns once a minute, and the study never ends. The driver checks the trials to run
against the nodes before any starts: on the local Ray a study starts, whose one node never changes, such trials
are refused (nothing runs, nothing is written); on a joined cluster, which an autoscaler may grow, the driver
warns and runs them. A dry run without ``--address`` checks them against the node that local Ray would have
(``machine_node``: this machine's CPUs, and its GPUs found as Ray finds them) and says what the run would refuse.
No Ray import, but for finding GPUs: the nodes come as plain mappings.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping

from runners.demand import worker_bundle
from runners.trials import Trial

ROWS_NAMED = 5  # rows named per kind of ask; the rest counted
log = logging.getLogger(__name__)


def placeable(bundle: Mapping[str, float], workers: int, nodes: Iterable[Mapping[str, float]]) -> bool:
    """Whether ``workers`` bundles fit on ``nodes`` (each node's whole resources), each bundle on one node."""
    per_node = [min(_holds(node.get(k, 0.0), k, v) for k, v in bundle.items() if v > 0) for node in nodes]
    return sum(per_node) >= workers


def _holds(total: float, name: str, amount: float) -> float:
    """How many asks of ``amount`` of resource ``name`` a node with ``total`` of it holds (``math.inf`` for an
    amount not known: ``machine_node``). Ray puts a fraction of a GPU within one GPU: a node of 3 GPUs holds 6 asks
    of 0.4 GPU, not 7."""
    if math.isinf(total):
        return math.inf
    if name == "GPU" and amount < 1:
        return math.floor(total + 1e-9) * math.floor(1 / amount + 1e-9)
    return math.floor(total / amount + 1e-9)


def unplaceable(trials: Iterable[Trial], nodes: list[Mapping[str, float]]) -> list[str]:
    """What no placement on ``nodes`` can ever hold: one line per kind of ask, naming its rows; [] if all fit.

    Args:
        trials: the trials to run.
        nodes: each alive node's total resources (``{"CPU": 2.0, "GPU": 1.0, ...}``).
    """
    asks: dict[tuple, list[str]] = {}
    for trial in trials:
        bundle, workers = worker_bundle(trial.config)
        if not placeable(bundle, workers, nodes):
            key = (tuple(sorted(bundle.items())), workers)
            rows = asks.setdefault(key, [])
            if trial.row.id not in rows:
                rows.append(trial.row.id)
    return [_ask_line(dict(bundle), workers, rows) for (bundle, workers), rows in asks.items()]


def machine_node(trials: Iterable[Trial]) -> dict[str, float]:
    """The one node of the local Ray a run would start on this machine (``runners.local_ray.start_ray``): its
    CPUs, and, where a trial asks for GPUs, its GPUs as Ray finds them (``machine_gpus``); where they cannot be
    found, as many as asked (``math.inf``: only the CPUs are checked)."""
    node = {"CPU": float(os.cpu_count() or 1)}
    if any(worker_bundle(t.config)[0].get("GPU") for t in trials):
        gpus = machine_gpus()
        node["GPU"] = math.inf if gpus is None else float(gpus)
    return node


def machine_gpus() -> int | None:
    """The GPUs a local Ray started here would have: Ray's own detection (its accelerator manager for ``GPU``,
    the visible devices counted, ``CUDA_VISIBLE_DEVICES`` among them); None where this Ray lacks those
    internals. Imports Ray (0.6 s here), so only asked where a trial wants a GPU."""
    try:
        from ray._private import accelerators

        manager = accelerators.get_accelerator_manager_for_resource("GPU")
        if manager is None:
            return 0
        count = manager.get_current_node_num_accelerators()
        visible = manager.get_current_process_visible_accelerator_ids()
        return min(count, len(visible)) if visible is not None else count
    except Exception as error:  # noqa: BLE001 - a Ray whose internals differ: the run's own check still holds
        log.debug("the GPUs could not be found as Ray finds them (%s)", error)
        return None


def dry_run_warning(trials: Iterable[Trial]) -> str | None:
    """What a dry run says of trials the local Ray would refuse (``refusal``, as a warning), or None."""
    trials = list(trials)
    node = machine_node(trials)
    lines = unplaceable(trials, [node])
    return f"warning: the run would stop before any trial: {refusal(lines, [node])}" if lines else None


def describe_nodes(nodes: list[Mapping[str, float]]) -> str:
    """``1 node: 2 CPUs, 0 GPUs`` / ``3 nodes, at most 64 CPUs and 1 GPU on one``."""
    cpus, gpus = (max((n.get(k, 0.0) for n in nodes), default=0.0) for k in ("CPU", "GPU"))
    if len(nodes) == 1:
        return f"1 node: {_amount(cpus, 'CPU')}, {_amount(gpus, 'GPU')}"
    return f"{len(nodes)} nodes, at most {_amount(cpus, 'CPU')} and {_amount(gpus, 'GPU')} on one"


def refusal(lines: list[str], nodes: list[Mapping[str, float]]) -> str:
    """The error of a local Ray that can never run some trials, with what to change."""
    return (
        f"some trials can never start on this machine's Ray ({describe_nodes(nodes)}): "
        + "; ".join(lines)
        + ". Ask for what the machine has (resources=default: 1 CPU, no GPU; or resources.cpus=N "
        "resources.gpus=M resources.workers=W), or run on a cluster that has it (--address)"
    )


def warning(lines: list[str], nodes: list[Mapping[str, float]]) -> str:
    """The warning of a joined cluster that cannot hold some trials now."""
    return (
        f"warning: the cluster ({describe_nodes(nodes)}) cannot hold some trials now: "
        + "; ".join(lines)
        + ". They wait until it can (an autoscaler may add nodes); Ctrl-C stops the study, resumable"
    )


def _ask_line(bundle: dict[str, float], workers: int, rows: list[str]) -> str:
    named = ", ".join(rows[:ROWS_NAMED]) + (f" and {len(rows) - ROWS_NAMED} more" if len(rows) > ROWS_NAMED else "")
    each = _amount(bundle["CPU"], "CPU") + (f" and {_amount(bundle['GPU'], 'GPU')}" if "GPU" in bundle else "")
    per = f"per trial {each}" if workers == 1 else f"{workers} workers of {each} each"
    return f"rows {named} ask {per}" if len(rows) > 1 else f"row {named} asks {per}"


def _amount(value: float, unit: str) -> str:
    if math.isinf(value):
        return f"{unit}s not known"
    number = f"{value:g}"
    return f"{number} {unit}" + ("" if value == 1 else "s")
