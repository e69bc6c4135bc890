"""The numbers of a table, row by row: values by seed, status by seed, summaries and paired differences.

This is the unformatted content of a table (``reports.table`` formats it); ``results_frame`` gives it as
a flat DataFrame for CSV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from reports.select import Selection
from reports.stats import PairedDifference, Summary, paired_difference, summarize
from study import mlflow_schema as S
from study.spec import MEASURED, Row, StudySpec

#: Status of a (row, seed) without any compatible run.
MISSING = "MISSING"
#: Metrics that do not depend on training (params, FLOPs): taken from any run of the row, finished or not.
MODEL_METRICS = (S.METRIC_PARAMS, S.METRIC_FLOPS)


@dataclass(frozen=True)
class RowResult:
    """Everything measured for one row.

    Attributes:
        row: the spec's row.
        values: metric -> seed -> value. Accuracies from FINISHED runs only; params and FLOPs from any run.
        status: seed -> run status (``FINISHED``, ``FAILED``, ``RUNNING``, ``KILLED``) or ``MISSING``.
        errors: seed -> failure reason (``ean.error``) of runs that have one.
        summaries: metric -> mean, std and count over seeds.
        deltas: metric -> paired difference to the baseline (empty for the baseline row or without one).
        run_ids: the ids of the chosen runs, in seed order.
    """

    row: Row
    values: dict[str, dict[int, float]]
    status: dict[int, str]
    errors: dict[int, str]
    summaries: dict[str, Summary]
    deltas: dict[str, PairedDifference]
    run_ids: tuple[str, ...]

    @property
    def n_finished(self) -> int:
        """How many seeds finished."""
        return sum(s == S.STATUS_FINISHED for s in self.status.values())


def row_results(spec: StudySpec, selection: Selection, delta_metrics: tuple[str, ...] = ("top1",)) -> list[RowResult]:
    """Computes each row's values, summaries and differences to the baseline.

    Args:
        spec: the study spec.
        selection: the chosen runs (``reports.select.select_runs``).
        delta_metrics: metrics to compare against the spec's baseline row (paired over seeds).

    Returns:
        One result per spec row, in spec order.
    """
    partial = [_row_values(spec, row, selection) for row in spec.rows]
    base = next((p for p in partial if p[0].id == spec.baseline), None)
    out = []
    for row, values, status, errors, run_ids in partial:
        if row.reference:
            out.append(reference_result(row))
            continue
        deltas = {}
        if base is not None and row.id != spec.baseline:
            deltas = {m: paired_difference(values[m], base[1][m]) for m in delta_metrics}
        summaries = {m: summarize(v.values()) for m, v in values.items()}
        out.append(RowResult(row, values, status, errors, summaries, deltas, run_ids))
    return out


def reference_result(row: Row) -> RowResult:
    """A reference row's result: its published values (one each, in MLflow's units), no runs, no seeds."""
    values: dict[str, dict[int, float]] = {m: {} for m in MEASURED}
    summaries = {m: Summary(math.nan, math.nan, 0) for m in MEASURED}
    for metric, value in row.reference.items():
        summaries[metric] = Summary(paper_absolute(metric, value), math.nan, 1)
    return RowResult(row, values, {}, {}, summaries, {}, ())


def compared_metrics(spec: StudySpec, delta_metrics: tuple[str, ...]) -> tuple[str, ...]:
    """The metrics of ``delta_metrics`` that can be compared to a baseline: in the table, with a baseline."""
    return tuple(m for m in delta_metrics if m in spec.measured_columns) if spec.baseline else ()


def _row_values(spec: StudySpec, row: Row, selection: Selection) -> tuple:
    values: dict[str, dict[int, float]] = {m: {} for m in MEASURED}
    status, errors, run_ids = {}, {}, []
    for seed in spec.seeds:
        run = selection.run(row.id, seed)
        if run is None:
            status[seed] = MISSING
            continue
        status[seed] = run["status"]
        run_ids.append(run["run_id"])
        if isinstance(run["error"], str) and run["error"]:
            errors[seed] = run["error"]
        for metric in MEASURED:
            value = run[metric]
            usable = run["status"] == S.STATUS_FINISHED or metric in MODEL_METRICS
            if usable and value is not None and math.isfinite(value):
                values[metric][seed] = float(value)
    return row, values, status, errors, tuple(run_ids)


def results_frame(spec: StudySpec, results: list[RowResult]) -> pd.DataFrame:
    """The table's numbers as a flat DataFrame (one row per table row), for CSV.

    Columns: ``row``, ``label``, ``kind`` (``row_kind``), ``source`` (a reference row's), the descriptive
    columns, ``seeds_finished``, ``seeds_planned``, then for
    each of params, flops, top1, top5 (shown in the table or not) ``{m}_mean``, ``{m}_std``, ``{m}_n`` and
    ``{m}_paper``, then per compared metric ``{m}_delta``, ``{m}_delta_low``, ``{m}_delta_high``,
    ``{m}_delta_n``. Params and FLOPs are absolute counts (not M or G); the paper's values are converted
    to the same units. Counts (``*_n``) are whole numbers, blank where the row has none (the baseline's
    ``_delta_n``); a reference row plans no seeds (``seeds_planned`` 0) and has one published value each.
    """
    records = []
    for res in results:
        rec = {"row": res.row.id, "label": res.row.label, "kind": row_kind(res.row), "source": res.row.source}
        rec.update({c: res.row.cells.get(c, "") for c in spec.descriptive_columns})
        rec.update(seeds_finished=res.n_finished, seeds_planned=0 if res.row.reference else len(spec.seeds))
        for m in MEASURED:  # all of them, also those the table does not show (the figures use params, flops)
            s = res.summaries[m]
            rec.update({f"{m}_mean": s.mean, f"{m}_std": s.std, f"{m}_n": s.n})
            rec[f"{m}_paper"] = paper_absolute(m, res.row.paper[m]) if m in res.row.paper else math.nan
        for m, d in res.deltas.items():
            rec.update({f"{m}_delta": d.mean, f"{m}_delta_low": d.low, f"{m}_delta_high": d.high})
            rec[f"{m}_delta_n"] = d.n
        records.append(rec)
    frame = pd.DataFrame.from_records(records)
    counts = [f"{m}_n" for m in MEASURED] + [f"{m}_delta_n" for r in results for m in r.deltas]
    return frame.astype(dict.fromkeys(counts, "Int64"))  # whole numbers, blank where a row has none


def row_kind(row: Row) -> str:
    """``trained`` (here), ``ensemble`` (of rows trained here) or ``reference`` (a published result)."""
    return "reference" if row.reference else "ensemble" if row.ensemble else "trained"


def paper_absolute(metric: str, value: float) -> float:
    """A paper value in MLflow's units: params M -> count, FLOPs G -> MACs, accuracies unchanged."""
    return value * {S.METRIC_PARAMS: 1e6, S.METRIC_FLOPS: 1e9}.get(metric, 1.0)
