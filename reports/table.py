"""The layout of a results table, independent of its output format (Markdown, LaTeX).

``build_table`` turns a spec and its chosen runs into a ``Table``: columns in the spec's order, rows in
the spec's order, cells as plain (Unicode) text with a bold flag and a footnote mark, notes under the
table and the provenance. Layout of the columns: the row label, the descriptive columns and the measured
ones in the spec's order (each accuracy column followed by "paper (Δ)" when the paper's values are
shown; Param and FLOPs name the paper's value in their cell where it differs from ours), one
"Δ... (95% CI)" column per metric compared with the baseline, and "Seeds" (finished / planned).

A study that compares ``datasets`` (Table 1: Something V1 and V2) gets one header group per dataset column,
each with its accuracy columns, the paper's values on that dataset, the differences to the baseline and its
Seeds; the descriptive columns and the costs (Param, FLOPs) are shown once.

Cell conventions: accuracies as mean ± sample std (n - 1) over the finished seeds (one decimal by default); Param in M
and FLOPs in G (multiply-accumulates per clip), as the paper prints them; the best accuracy of a column
in bold (ties: all); a row whose seeds did not all finish carries a mark on its Seeds cell and a note
that names each seed's status; a row without a finished seed shows its status instead of numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum

from reports.results import MISSING, RowResult, compared_metrics, row_results
from reports.select import Selection, describe_duplicates, describe_exclusions, describe_test_videos
from study import mlflow_schema as S
from study.spec import LABEL_COLUMN, MEASURED, StudySpec, spec_hash

#: Measured columns where higher is better (bolded); params and FLOPs are costs and are not ranked.
HIGHER_IS_BETTER = (S.METRIC_TOP1, S.METRIC_TOP5)
#: Cost columns: unit and scale as printed (the paper's convention: Param in M, FLOPs in G).
COSTS = {S.METRIC_PARAMS: ("M", 1e6), S.METRIC_FLOPS: ("G", 1e9)}
#: Short metric names used in derived column titles.
SHORT_NAMES = {"params": "Param", "flops": "FLOPs", "top1": "Top1", "top5": "Top5"}
#: Printed names of dataset registry names (others are printed as they are).
DATASET_TITLES = {
    "something_v1": "Something V1",
    "something_v2": "Something V2",
    "kinetics400": "Kinetics-400",
    "diving48": "Diving48",
    "synthetic": "Synthetic",
}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: Appended to the label of a reference row (a published result shown beside ours, not trained here).
REFERENCE_MARK = "†"


@dataclass(frozen=True)
class Cell:
    """One table cell: Unicode text, bold or not, and an optional footnote mark (``"a"`` or ``"*"``)."""

    text: str
    bold: bool = False
    mark: str = ""


#: The name of the Seeds column (finished / planned seeds of each row).
SEEDS_COLUMN = "seeds"


class ColumnKind(Enum):
    """What a column's cells show."""

    LABEL = "label"  # the row's label
    TEXT = "text"  # a descriptive column: the row's text from the spec (``Row.cells``)
    MEASURED = "measured"  # a metric from MLflow: mean ± std over the seeds (Param, FLOPs: the value)
    PAPER = "paper"  # the paper's value of an accuracy and ours minus it: "paper (Δ)"
    DELTA = "delta"  # the paired difference of a metric to the baseline row, with its 95% CI
    SEEDS = "seeds"  # finished / planned seeds


@dataclass(frozen=True)
class Column:
    """A column: the spec column (or metric) it shows, its printed title, header group (e.g. the dataset;
    ``""`` for none), alignment and what kind of cells it has.

    Several columns may show one metric (``top1``: its values, the paper's, the difference to the baseline):
    ``(name, kind, part)`` tells them apart; ``part`` is the dataset column (index into the spec's
    ``datasets``) whose runs its cells show, 0 for a study of one dataset.
    """

    name: str
    title: str
    group: str = ""
    align: str = "c"
    kind: ColumnKind = ColumnKind.TEXT
    part: int = 0


@dataclass(frozen=True)
class TableRow:
    """A row of cells aligned with ``Table.columns``."""

    id: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Note:
    """A note under the table; ``mark`` is the footnote mark it explains (``""`` for a plain remark)."""

    mark: str
    text: str


@dataclass(frozen=True)
class Provenance:
    """Where the numbers come from.

    Attributes:
        study: the study name.
        spec_hash: hash of the spec file the table was built with (``study.spec.spec_hash``).
        study_hashes: ``ean.study_hash`` of the study runs that produced the chosen runs.
        git_commits: git commits of the chosen runs.
        code_versions: code versions of the chosen runs.
        data_fingerprints: data fingerprints of the chosen runs.
        run_ids: (row id, run ids of that row) in table order.
        generated: when the table was generated (ISO date and time, UTC).
        invocation: what the command that made the runs changed from the spec as written (a profile, seeds,
            overrides), "" when nothing.
    """

    study: str
    spec_hash: str
    study_hashes: tuple[str, ...]
    git_commits: tuple[str, ...]
    code_versions: tuple[str, ...]
    data_fingerprints: tuple[str, ...]
    run_ids: tuple[tuple[str, tuple[str, ...]], ...]
    generated: str
    invocation: str = ""

    def lines(self) -> list[str]:
        """Human-readable lines, shared by the Markdown footnote and the LaTeX comment."""
        runs = "; ".join(f"{row}: {', '.join(ids) or 'none'}" for row, ids in self.run_ids)
        ran = [f"not the spec as written: {self.invocation}"] if self.invocation else []
        return [
            f"study {self.study}, spec hash {self.spec_hash}, study hash in MLflow {_join(self.study_hashes)}",
            *ran,
            f"git commit {_join(self.git_commits)}, code version {_join(self.code_versions)}, "
            f"data fingerprint {_join(self.data_fingerprints)}",
            f"MLflow runs: {runs}",
            f"generated {self.generated}",
        ]


@dataclass(frozen=True)
class Table:
    """A results table ready to render."""

    name: str
    title: str
    caption: str
    columns: tuple[Column, ...]
    rows: tuple[TableRow, ...]
    notes: tuple[Note, ...]
    provenance: Provenance


@dataclass(frozen=True)
class _Part:
    """The runs of one dataset column of the table (the whole table for a study of one dataset).

    Attributes:
        column: the dataset column (``""`` for a study of one dataset).
        spec: the study on that dataset (``StudySpec.on_dataset``: its paper numbers).
        selection: its chosen runs.
        results: its rows' results, in spec order.
        like: whether its runs are on the dataset and protocol of its paper numbers.
        group: its header group: the dataset's printed name.
    """

    column: str
    spec: StudySpec
    selection: Selection
    results: list[RowResult]
    like: bool
    group: str


def build_table(
    spec: StudySpec,
    selection: Selection | Mapping[str, Selection],
    study_hashes: dict[str, str] | None = None,
    *,
    paper: bool | None = None,
    delta_metrics: tuple[str, ...] = ("top1",),
    decimals: int = 1,
    generated: dt.datetime | str | None = None,
    invocation: str = "",
) -> Table:
    """Lays out the table of a study from its chosen runs.

    Args:
        spec: the study spec.
        selection: the runs to show (``reports.select.select_runs``); for a study that compares ``datasets``,
            the selection of each dataset column, by column.
        study_hashes: ``ean.study_hash`` by study (parent) run id, for the provenance.
        paper: show the paper's values beside ours; ``None``: when any row has them.
        delta_metrics: metrics given a "difference to the baseline" column (if the spec has a baseline).
        decimals: decimals of accuracies and differences.
        generated: the date put in the provenance; ``None``: now (UTC).
        invocation: what the command that made the runs changed from the spec (put in the provenance).

    Returns:
        The table.
    """
    delta_metrics = compared_metrics(spec, delta_metrics)
    parts = _parts(spec, selection, delta_metrics)
    show_paper = any(r.paper for p in parts for r in p.spec.rows) if paper is None else paper
    paper_cols = [m for m in spec.measured_columns if show_paper and any(m in r.paper for r in spec.rows)]
    cost_paper = show_paper and any(m in paper_cols for m in COSTS)
    columns = _columns(spec, paper_cols, delta_metrics, parts)
    notes: list[Note] = []
    rows = []
    for i, row in enumerate(spec.rows):
        marks = {}
        for k, part in enumerate(parts):
            res = part.results[i]
            note = "" if row.reference else _seeds_note(res, spec.seeds, _accuracy_columns(spec, delta_metrics))
            if note:
                marks[k] = footnote_mark(len(notes))
                notes.append(Note(marks[k], _prefixed(part, parts, note)))
        cells = tuple(
            _cell(c, _result_of(c, parts, i), marks.get(c.part, ""), decimals, show_paper, parts) for c in columns
        )
        rows.append(TableRow(row.id, cells))
    rows = _bold_best(columns, rows, parts, decimals)
    notes += _remarks(spec, parts, paper_cols, cost_paper, delta_metrics)
    return Table(
        name=spec.name,
        title=spec.title,
        caption=_caption(spec, parts),
        columns=columns,
        rows=tuple(rows),
        notes=tuple(notes),
        provenance=replace(_provenance(spec, parts, study_hashes or {}, generated), invocation=invocation),
    )


def _parts(spec: StudySpec, selection, delta_metrics: tuple[str, ...]) -> list[_Part]:
    selections = selection if isinstance(selection, Mapping) else {"": selection}
    if list(selections) != list(spec.columns_of_data):
        raise ValueError(f"{spec.name}: a selection is needed for each dataset column {list(spec.columns_of_data)}")
    parts = []
    for column, chosen in selections.items():
        view = spec.on_dataset(column)
        group = DATASET_TITLES.get(column or chosen.dataset, column or chosen.dataset or "")
        if column and chosen.dataset not in (None, column):
            group += f" (runs on {DATASET_TITLES.get(chosen.dataset, chosen.dataset)})"
        results = row_results(view, chosen, delta_metrics)
        parts.append(_Part(column, view, chosen, results, _like_with_like(view, chosen), group))
    return parts


def footnote_mark(i: int) -> str:
    """The ``i``-th footnote mark (0-based): ``a`` ... ``z``, then ``aa``, ``ab``, ..."""
    mark = ""
    i += 1
    while i:
        i, r = divmod(i - 1, len(_LETTERS))
        mark = _LETTERS[r] + mark
    return mark


def _accuracy_columns(spec: StudySpec, delta_metrics: tuple[str, ...]) -> tuple[str, ...]:
    """The metrics a row's finished seeds must all have: the accuracies shown or compared (not the costs)."""
    return tuple(dict.fromkeys(m for m in (*spec.measured_columns, *delta_metrics) if m not in COSTS))


def _result_of(column: Column, parts: list[_Part], i: int) -> RowResult:
    """The result of row ``i`` a column's cell shows: its part's; a cost column of several parts shows the first
    part that measured it (the network's size does not depend on the dataset)."""
    if column.kind is ColumnKind.MEASURED and column.name in COSTS and len(parts) > 1:
        measured = [p.results[i] for p in parts if p.results[i].summaries[column.name].n]
        return measured[0] if measured else parts[0].results[i]
    return parts[column.part].results[i]


def _prefixed(part: _Part, parts: list[_Part], text: str) -> str:
    """``text`` about one part, prefixed with its group where the table has several."""
    return f"{part.group}: {text}" if len(parts) > 1 else text


def _like_with_like(spec: StudySpec, selection: Selection) -> bool:
    """Whether the chosen runs are on the dataset and protocol the paper's numbers were published for (or there
    are no runs): only then is ours minus the paper's shown."""
    if selection.dataset is None:
        return True
    return selection.dataset == spec.paper_dataset and selection.protocol == spec.paper_protocol


def _columns(spec: StudySpec, paper_cols: list[str], delta_metrics: tuple, parts: list[_Part]) -> tuple[Column, ...]:
    cols = [Column(LABEL_COLUMN, spec.title_of(LABEL_COLUMN), align="l", kind=ColumnKind.LABEL)]
    if len(parts) == 1:  # the accuracies under the dataset, then the differences and the seeds
        cols += _measured_columns(spec, spec.columns, paper_cols, parts[0], 0)
        cols += _tail_columns(delta_metrics, "", 0)
        return tuple(cols)
    shared = [c for c in spec.columns if c not in HIGHER_IS_BETTER]
    cols += _measured_columns(spec, shared, paper_cols, parts[0], 0)
    for k, part in enumerate(parts):  # a group per dataset: its accuracies, differences and seeds
        accuracies = [c for c in spec.columns if c in HIGHER_IS_BETTER]
        cols += _measured_columns(spec, accuracies, paper_cols, part, k)
        cols += _tail_columns(delta_metrics, part.group, k)
    return tuple(cols)


def _measured_columns(spec: StudySpec, names, paper_cols: list[str], part: _Part, k: int) -> list[Column]:
    cols = []
    for c in names:
        grp = part.group if c in HIGHER_IS_BETTER else ""
        kind = ColumnKind.MEASURED if c in MEASURED else ColumnKind.TEXT
        cols.append(Column(c, spec.title_of(c), grp, kind=kind, part=k))
        if c in paper_cols and c not in COSTS:
            title = f"{SHORT_NAMES[c]} paper (Δ)" if part.like else f"{SHORT_NAMES[c]} paper"
            cols.append(Column(c, title, grp, kind=ColumnKind.PAPER, part=k))
    return cols


def _tail_columns(delta_metrics: tuple, group: str, k: int) -> list[Column]:
    cols = [  # a cost's Δ is one network's against another's: no interval
        Column(m, f"Δ{SHORT_NAMES[m]}" + ("" if m in COSTS else " (95% CI)"), group, kind=ColumnKind.DELTA, part=k)
        for m in delta_metrics
    ]
    return [*cols, Column(SEEDS_COLUMN, "Seeds", group, kind=ColumnKind.SEEDS, part=k)]


def _cell(column: Column, res: RowResult, mark: str, decimals: int, show_paper: bool, parts: list[_Part]) -> Cell:
    kind, name = column.kind, column.name
    like = parts[column.part].like
    if res.row.reference:
        return _reference_cell(column, res, decimals)
    if kind is ColumnKind.LABEL:
        return Cell(res.row.label)
    if kind is ColumnKind.SEEDS:
        return Cell(f"{res.n_finished}/{len(res.status)}", mark=mark)
    if kind is ColumnKind.PAPER:
        return Cell(_paper_text(name, res, decimals, like))
    if kind is ColumnKind.DELTA:
        return _delta_cell(res, name, decimals)
    if kind is ColumnKind.MEASURED:
        return Cell(_measured_cell_text(name, res, decimals, show_paper))
    return Cell(res.row.cells.get(name, ""))


def _reference_cell(column: Column, res: RowResult, decimals: int) -> Cell:
    """A reference row's cell: its label marked, its published values as they are, no seeds or differences."""
    kind, name = column.kind, column.name
    if kind is ColumnKind.LABEL:
        return Cell(f"{res.row.label}{REFERENCE_MARK}")
    if kind is ColumnKind.SEEDS:
        return Cell("published")
    if kind is ColumnKind.MEASURED:
        s = res.summaries[name]
        if s.n == 0:
            return Cell("-")
        return Cell(_cost_text(name, s.mean) if name in COSTS else f"{s.mean:.{decimals}f}")
    if kind is ColumnKind.TEXT:
        return Cell(res.row.cells.get(name, ""))
    return Cell("")


def _measured_cell_text(metric: str, res: RowResult, decimals: int, show_paper: bool) -> str:
    """Our value of ``metric``; Param and FLOPs add the paper's where it differs and the paper is shown."""
    text = _measure_text(metric, res, decimals)
    if show_paper and metric in COSTS and metric in res.row.paper:
        paper = _cost_text(metric, res.row.paper[metric] * COSTS[metric][1])
        text += f" (paper {paper})" if paper != text else ""
    return text


def _measure_text(metric: str, res: RowResult, decimals: int) -> str:
    s = res.summaries[metric]
    if s.n == 0:
        return _status_word(res)
    if metric in COSTS:
        return _cost_text(metric, s.mean)
    return f"{s.mean:.{decimals}f}" + (f" ± {s.std:.{decimals}f}" if s.n > 1 else "")


def _paper_text(metric: str, res: RowResult, decimals: int, like: bool = True) -> str:
    """The paper's value, and ours minus it when ours is measured like the paper's."""
    if metric not in res.row.paper:
        return ""
    p, s = res.row.paper[metric], res.summaries[metric]
    shown = float(f"{s.mean:.{decimals}f}") if s.n else math.nan  # ours as printed: the Δ a reader computes
    return f"{p:.1f}" + (f" ({signed(shown - p, decimals)})" if s.n and like else "")


def _delta_cell(res: RowResult, metric: str, decimals: int) -> Cell:
    if metric not in res.deltas:
        return Cell("baseline")
    d = res.deltas[metric]
    if d.n == 0:
        return Cell("n/a")
    if metric in COSTS:  # in the column's unit (M, G): a network's size is the same for every seed
        unit, scale = COSTS[metric]
        places = _interval_decimals(d.mean / scale, d.mean / scale, 1)  # +0.04M, not +0.0M
        return Cell(f"{signed(d.mean / scale, places)}{unit}" + (" (1 seed)" if d.n == 1 else ""))
    if d.n == 1:
        return Cell(f"{signed(d.mean, decimals)} (1 seed)")
    places = _interval_decimals(d.low, d.high, decimals)
    text = f"{signed(d.mean, places)} [{signed(d.low, places)}, {signed(d.high, places)}]"
    fewer = f" ({d.n} seeds)" if d.n < res.summaries[metric].n else ""  # the baseline lacks seeds the mean has
    return Cell(text + fewer, mark="*" if d.excludes_zero else "")


def _interval_decimals(low: float, high: float, decimals: int, most: int = 3) -> int:
    """Decimals that show an interval without a bound that prints as 0 but is not (up to ``most`` more than
    ``decimals``): ``[+0.03, +0.53]*``, not ``[+0.0, +0.5]*`` beside a mark that says it excludes zero, and
    ``[-0.02, +0.40]``, not ``[+0.0, +0.4]``, which hides that it contains zero. The mean gets the same."""
    places = decimals
    while places < decimals + most and any(b != 0 and round(b, places) == 0 for b in (low, high)):
        places += 1
    return places


def _cost_text(metric: str, value: float) -> str:
    unit, scale = COSTS[metric]
    return f"{value / scale:.1f}{unit}"


def signed(value: float, decimals: int) -> str:
    """``value`` with an explicit sign; a value that rounds to zero prints as ``+0.0``, never ``-0.0``."""
    rounded = round(value, decimals)
    return f"{rounded + 0.0 if rounded != 0 else 0.0:+.{decimals}f}"


def _status_word(res: RowResult) -> str:
    statuses = set(res.status.values())
    for status in (S.STATUS_RUNNING, "SCHEDULED", S.STATUS_FAILED, S.STATUS_KILLED):
        if status in statuses:
            return status.lower()
    return MISSING.lower()


def _seeds_note(res: RowResult, seeds: tuple[int, ...], metrics: tuple[str, ...]) -> str:
    """What a row's Seeds mark explains ("" when nothing): each seed that did not finish, with its status (and
    error), and each finished seed without a value of a shown accuracy (its mean is over the others)."""
    parts = []
    for seed, status in res.status.items():
        if status == S.STATUS_FINISHED:
            continue
        text = f"seed {seed} {status.lower()}"
        if seed in res.errors:
            text += f" ({_shorten(res.errors[seed])})"
        parts.append(text)
    finished = [seed for seed in seeds if res.status.get(seed) == S.STATUS_FINISHED]
    for metric in metrics:
        lacking = [str(seed) for seed in finished if seed not in res.values.get(metric, {})]
        if lacking:
            which = f"seed {lacking[0]}" if len(lacking) == 1 else f"seeds {', '.join(lacking)}"
            parts.append(f"{which} finished without a {SHORT_NAMES.get(metric, metric)} value (left out of it)")
    return f"{res.row.label}: {'; '.join(parts)}." if parts else ""


def _bold_best(columns: tuple[Column, ...], rows: list[TableRow], parts: list[_Part], decimals: int) -> list:
    """Bolds the best accuracy of each column among the rows measured here (not the published references)."""
    for j, col in enumerate(columns):
        if col.kind is not ColumnKind.MEASURED or col.name not in HIGHER_IS_BETTER:
            continue
        results = parts[col.part].results
        means = [math.nan if r.row.reference else round(r.summaries[col.name].mean, decimals) for r in results]
        finite = [m for m in means if not math.isnan(m)]
        if not finite:
            continue
        best = max(finite)
        for i, m in enumerate(means):
            if m == best:
                cells = list(rows[i].cells)
                cells[j] = Cell(cells[j].text, bold=True, mark=cells[j].mark)
                rows[i] = TableRow(rows[i].id, tuple(cells))
    return rows


def _remarks(spec: StudySpec, parts: list[_Part], paper_cols: list, cost_paper: bool, delta_metrics) -> list[Note]:
    notes = []
    compared = any(not r.row.reference and r.row.id != spec.baseline for part in parts for r in part.results)
    if delta_metrics and compared:  # a table of the baseline alone has no difference to explain
        base = spec.row(spec.baseline).label
        notes.append(
            Note(
                "*",
                f"Δ vs {base}: mean paired difference over the seeds both rows finished, with its 95% "
                "t-interval; * marks an interval that excludes zero.",
            )
        )
    if any(m not in COSTS for m in paper_cols):
        notes += [Note("", text) for text in dict.fromkeys(_paper_note(p) for p in parts)]
    if cost_paper:
        notes.append(Note("", "Param and FLOPs show the paper's value in parentheses where it differs from ours."))
    notes += [Note("", f"{row.label}: {row.note}") for row in spec.rows if row.note]
    notes += [Note("", text) for text in spec.notes]
    by_source: dict[str, list[str]] = {}
    for row in (r for r in spec.rows if r.reference):
        by_source.setdefault(row.source, []).append(row.label)
    if by_source:
        sources = "; ".join(f"{', '.join(labels)}: {source}" for source, labels in by_source.items())
        notes.append(
            Note(
                "",
                f"{REFERENCE_MARK} Published results, not trained here ({sources}); bold marks the best of the rows "
                "trained here.",
            )
        )
    labels = {r.id: r.label for r in spec.rows}
    for part in parts:
        for line in describe_exclusions(part.selection, labels, table_wide=True):
            notes.append(Note("", f"Not included: {line}."))
    for part in parts:
        for line in describe_exclusions(part.selection, labels, table_wide=False):
            notes.append(Note("", _prefixed(part, parts, f"Not included: {line}.")))
        for line in describe_duplicates(part.selection, labels):
            notes.append(Note("", _prefixed(part, parts, f"{line}.")))
        for line in describe_test_videos(part.selection, labels):
            notes.append(Note("", _prefixed(part, parts, f"{line}.")))
    return notes


def _paper_note(part: _Part) -> str:
    if part.like:
        return "paper (Δ): the value reported in the paper, and ours minus it."
    spec, selection = part.spec, part.selection
    published = DATASET_TITLES.get(spec.paper_dataset, spec.paper_dataset or "a dataset the spec does not name")
    ours = DATASET_TITLES.get(selection.dataset, selection.dataset)
    return (
        f"paper: the value reported in the paper, on {published} with protocol {spec.paper_protocol}; these runs are "
        f"on {ours} with protocol {selection.protocol}, so no difference to it is shown."
    )


def _caption(spec: StudySpec, parts: list[_Part]) -> str:
    groups = " and ".join(p.group for p in parts if p.group) or "no runs"
    parts_text = [f"{groups}, protocol {_protocols(spec)} (clips x crops)"]
    seeds = f"{len(spec.seeds)} seed{'s' if len(spec.seeds) != 1 else ''}"
    parts_text.append(f"mean ± sample std (n - 1) over {seeds} (Seeds: finished/planned)")
    units = []
    if S.METRIC_PARAMS in spec.columns:
        units.append("Param in millions")
    if S.METRIC_FLOPS in spec.columns:
        units.append("FLOPs in billions of multiply-accumulates per clip")
    if units:
        parts_text.append(", ".join(units))
    return "; ".join(parts_text) + "."


def _protocols(spec: StudySpec) -> str:
    """The spec's protocol, and each evaluation row's own: ``"1x1 (EAN16F x2: 2x1)"`` (a label that several rows
    share is followed by the row's id)."""
    labels = [r.label for r in spec.rows]
    named = {r.id: r.label if labels.count(r.label) == 1 else f"{r.label}, row {r.id}" for r in spec.rows}
    own = [f"{named[r.id]}: {r.protocol.tag}" for r in spec.rows if r.protocol and r.protocol != spec.protocol]
    return spec.protocol.tag + (f" ({'; '.join(own)})" if own else "")


def _provenance(spec: StudySpec, parts: list[_Part], study_hashes: dict, generated) -> Provenance:
    chosen = [run for p in parts for run in p.selection.chosen.to_dict("records")]
    if generated is None:
        generated = dt.datetime.now(dt.timezone.utc)
    if isinstance(generated, dt.datetime):
        generated = generated.strftime("%Y-%m-%d %H:%M UTC")
    parents = _unique(run.get("parent_run_id") for run in chosen)
    run_ids = [
        (row.id, tuple(run for p in parts for run in p.results[i].run_ids))
        for i, row in enumerate(spec.rows)
        if not row.reference  # published: no runs
    ]
    return Provenance(
        study=spec.name,
        spec_hash=spec_hash(spec),
        study_hashes=tuple(dict.fromkeys(study_hashes[p] for p in parents if study_hashes.get(p))),
        git_commits=_unique(run.get("git_commit") for run in chosen),
        code_versions=_unique(run.get("code_version") for run in chosen),
        data_fingerprints=_unique(run.get("data_fingerprint") for run in chosen),
        run_ids=tuple(run_ids),
        generated=generated,
    )


def _unique(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def _join(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "(none)"


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
