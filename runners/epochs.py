"""One epoch of a trial on its way from the trial to MLflow: ``EpochReport``.

A trial reports each epoch to Tune as a flat dict (``EpochReport.to_dict``: ``{"epoch": 3.0, "train_loss":
...}``, the form of ``ean.train.fit``'s history entries too). The driver's callback reads it back
(``EpochReport.of_result``) and hands the record to the journal, the tracker and the progress display.
A trial's last report is its final result, marked with ``FINAL_KEY``, not an epoch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from study import mlflow_schema as S

#: The key that marks a trial's final result (``{FINAL_KEY: 1.0, ...}``) among its reports to Tune.
FINAL_KEY = "final"
#: The key, in a trial's ``final.json``, of the Ray node id of the process that computed the result.
RAY_NODE_KEY = "ray_node"
#: The key of the epoch (1-based) in a flat report.
EPOCH_KEY = "epoch"


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (a bool is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class EpochReport:
    """The metrics of one epoch of one trial.

    Attributes:
        epoch: the epoch, 1-based (the MLflow step the metrics are logged at).
        metrics: metric name -> value (names of ``study.mlflow_schema.EPOCH_LOGGED``).
    """

    epoch: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, float]:
        """The flat dict reported to Tune: the epoch (a float, like every value) and the metrics."""
        return {EPOCH_KEY: float(self.epoch), **self.metrics}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], keys: Collection[str] = S.EPOCH_LOGGED) -> EpochReport:
        """Reads a flat dict (``to_dict``'s, or a history entry of ``ean.train.fit``): its epoch and those of its
        values named in ``keys`` that are numbers (Tune adds keys of its own to a result)."""
        metrics = {k: v for k, v in data.items() if k in keys and is_number(v)}
        return cls(int(data[EPOCH_KEY]), metrics)

    @classmethod
    def of_result(cls, result: Mapping[str, Any]) -> EpochReport | None:
        """The epoch a Tune result reports; ``None`` for a trial's final result or a result without an epoch."""
        if result.get(FINAL_KEY) or EPOCH_KEY not in result:
            return None
        return cls.from_dict(result)
