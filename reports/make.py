"""Build a study's tables and figures from MLflow: ``python -m reports.make studies/table8.yaml``.

Reads the study's runs from any MLflow tracking URI, lays out the table of the spec (see
``reports.table``) and writes, under ``--out`` (default ``outputs/reports/<study>``):

- ``<study>.md``: the Markdown table with notes and a provenance footnote (also printed);
- ``<study>.tex``: the LaTeX table (booktabs) to ``\\input`` in a paper, and ``<study>_standalone.tex``,
  a document around it that compiles with pdflatex;
- ``<study>.csv``: the table's numbers (absolute units) and each row's ``num_classes`` (chance top-1 is
  100 / num_classes percent); ``<study>_runs.csv``: every trial run found, with whether it was used and why not;
- ``figures/``: top-1 against GFLOPs, and per non-baseline row the classes it improves most (PNG, PDF).

``make_report`` does the same from Python (the study runner calls it at the end of a study, with the runs it
read through ``read_runs`` and ``study_runs``, which it keeps while the store is unchanged).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ean.command_name import command_name
from ean.files_write import atomic_path, folder_problem, write_text
from reports.collect import StudyNotFoundError, StudyRuns, collect_runs, read_runs, study_runs
from reports.folder import ReportFolder, file_digest
from reports.latex import latex_document, render_latex
from reports.markdown import render_markdown
from reports.results import compared_metrics, results_frame, row_results
from reports.scores import download_scores, mean_per_class_accuracy
from reports.select import Selection, select_runs, tag_text
from reports.table import Table, build_table
from study.find import find_spec
from study.mlflow_schema import DEFAULT_TRACKING_URI, STATUS_FINISHED, default_tracking_uri
from study.spec import MEASURED, SpecError, StudySpec, load_spec
from study.tracking_check import TrackingUnreachable

__all__ = ["Report", "StudyNotFoundError", "StudyRuns", "make_report", "read_runs", "study_runs"]
FORMATS = ("md", "latex", "csv")
SYNTHETIC = "synthetic"  # the generated dataset: no paper numbers apply to it


@dataclass
class Report:
    """What ``make_report`` produced.

    Attributes:
        table: the table's layout (render it again with ``reports.markdown`` / ``reports.latex``).
        markdown: the Markdown table.
        files: every file written.
        warnings: things that could not be produced (e.g. a figure without scores).
        out: the directory the files are under (``figures/`` in it).
        removed: the files of the study's last report in ``out`` that this one did not write (``reports.folder``).
    """

    table: Table
    markdown: str
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    out: Path | None = None
    removed: list[Path] = field(default_factory=list)


def make_report(
    spec: StudySpec | str | Path,
    out: str | Path | None = None,
    tracking_uri: str | None = None,
    formats: tuple[str, ...] = FORMATS,
    draw_figures: bool = True,
    paper: bool | None = None,
    delta_metrics: tuple[str, ...] = ("top1",),
    decimals: int = 1,
    dataset: str | None = None,
    code_version: str | None = None,
    data_fingerprint: str | None = None,
    generated: dt.datetime | str | None = None,
    keys: Mapping[tuple[str, str, int], str] | None = None,
    runs: StudyRuns | None = None,
    invocation: str = "",
) -> Report:
    """Builds a study's tables (and figures) from MLflow and writes them under ``out``.

    Args:
        spec: the study spec, or the path of its YAML file.
        out: output directory; ``None``: ``outputs/reports/<study>`` (beside it with a pin, or for runs on the
            generated ``synthetic`` dataset: ``default_out``).
        tracking_uri: MLflow tracking URI; ``None``: ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``.
        formats: any of ``"md"``, ``"latex"``, ``"csv"``.
        draw_figures: also draw the figures.
        paper: show the paper's values beside ours; ``None``: when the spec has them and the runs are not on
            the generated ``synthetic`` dataset (the paper's numbers say nothing about it).
        delta_metrics: metrics compared against the baseline row.
        decimals: decimals of accuracies.
        dataset: use only runs of this dataset (default: the one with the most finished runs).
        code_version: use only runs of this code version (default: as for ``dataset``).
        data_fingerprint: use only runs on data of this fingerprint (default: as for ``dataset``).
        generated: the date in the provenance; ``None``: now.
        keys: (row, dataset column or "", seed) -> the trial key an invocation planned (the driver's report):
            a cell shows only runs of its key (``reports.select.select_runs``); ``None``: the newest run.
        runs: the study's runs at ``tracking_uri`` as ``reports.collect.collect_runs`` reads them, when the caller
            has them (the driver keeps them while the store is unchanged); ``None``: read now.
        invocation: what the command that made the runs changed from the spec as written (the driver's
            ``--profile``, ``--seeds``, overrides), put in the provenance; "": nothing.

    Raises:
        SpecError: the spec is invalid.
        StudyNotFoundError: the tracking store has no experiment of the study.
        ValueError: an unknown format.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if not formats:
        raise ValueError(f"no format given; valid formats: {', '.join(FORMATS)}")
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; valid formats: {', '.join(FORMATS)}")
    bad = [m for m in delta_metrics if m not in MEASURED]
    if bad:
        raise ValueError(f"cannot compare {', '.join(bad)} to the baseline; measured columns: {', '.join(MEASURED)}")
    spec = spec if isinstance(spec, StudySpec) else load_spec(spec)
    tracking_uri = tracking_uri or default_tracking_uri()
    runs = runs if runs is not None else collect_runs(spec.name, tracking_uri)
    _check_pinned(spec.name, runs.trials, dataset=dataset, code_version=code_version, data_fingerprint=data_fingerprint)
    selections = select_columns(spec, runs.trials, dataset, code_version, keys, data_fingerprint)
    selection = next(iter(selections.values()))  # the figures': the first dataset's
    synthetic = any(s.dataset == SYNTHETIC for s in selections.values())
    if out is None:  # the smoke runs' table, chosen or pinned, goes beside the study's own
        out = default_out(spec.name, dataset or (SYNTHETIC if synthetic else None), code_version, data_fingerprint)
    out = Path(out)
    problem = folder_problem(out)
    if problem:
        raise ValueError(f"--out {out}: {problem}; the report writes several files into a folder")
    out.mkdir(parents=True, exist_ok=True)
    if paper is None and synthetic:
        paper = False
    table = build_table(
        spec,
        selections if spec.datasets else selection,
        runs.study_hashes,
        paper=paper,
        delta_metrics=delta_metrics,
        decimals=decimals,
        generated=generated,
        invocation=invocation,
    )
    report = Report(table=table, markdown=render_markdown(table), out=out)
    with ReportFolder(out, spec.name, tracking_uri) as folder:  # one report of the study at a time
        try:
            report.files += _write_tables(spec, table, report.markdown, out, formats)
            if "csv" in formats:
                report.files += _write_csv(spec, selections, runs.trials, delta_metrics, out, paper is not False)
            if draw_figures:
                _draw_figures(spec, selection, tracking_uri, out / "figures", report)
        except BaseException:
            folder.failed(report.files)  # what it wrote so far stays the study's, for the next report to remove
            raise
        report.removed, problems = folder.finish(report.files, _shown(selections))
    report.warnings += problems
    return report


def _shown(selections: dict[str, Selection]) -> list[dict]:
    """The runs the table shows, for the folder's record (``reports.folder``): row, seed, dataset column (""
    in a study of one dataset), run id and status each."""
    fields = ("row", "run_id", "status")
    return [
        {**{key: run[key] for key in fields}, "seed": int(run["seed"]), "column": column}
        for column, selection in selections.items()
        for run in selection.chosen.to_dict("records")
    ]


def default_out(
    study: str, dataset: str | None = None, code_version: str | None = None, data_fingerprint: str | None = None
) -> Path:
    """``outputs/reports/<study>``, or beside it a folder named for the pinned runs, so that a table of other runs
    (``--dataset synthetic``: the smoke runs) never replaces the study's own: ``table8-dataset-synthetic``,
    ``table8-code-0.4.2``, ``table8-data-<the fingerprint's first 12 hex digits>``."""
    parts = [study]
    if dataset:
        parts.append(f"dataset-{dataset}")
    if code_version:
        parts.append(f"code-{code_version}")
    if data_fingerprint:
        parts.append(f"data-{data_fingerprint.rsplit(':', 1)[-1][:12]}")
    return Path("outputs") / "reports" / "-".join(_file_safe(part) for part in parts)


def _file_safe(text: str) -> str:
    """``text`` with every character but letters, digits, ``.``, ``_`` and ``-`` made ``_``."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def _check_pinned(study: str, trials: pd.DataFrame, **pinned: str | None) -> None:
    """ValueError when a pinned ``dataset``, ``code_version`` or ``data_fingerprint`` has no run of the study
    (naming those there)."""
    for column, value in pinned.items():
        if value is None:
            continue
        there = sorted({str(v) for v in trials[column].dropna()}) if column in trials else []
        if value not in there:
            flag = "--" + column.replace("_", "-")
            raise ValueError(f"{flag} {value!r}: no run of {study} has it; its runs have: {', '.join(there) or 'none'}")


def select_columns(
    spec: StudySpec,
    trials: pd.DataFrame,
    dataset: str | None = None,
    code_version: str | None = None,
    keys: Mapping[tuple[str, str, int], str] | None = None,
    data_fingerprint: str | None = None,
) -> dict[str, Selection]:
    """The runs of each dataset column (``{"": selection}`` for a study of one dataset): a column's runs are those
    tagged with it (``ean.column``), chosen as in a table of that dataset (``reports.select.select_runs``);
    ``dataset``, ``code_version`` and ``data_fingerprint`` restrict every column (``--dataset synthetic``: its
    smoke runs only), and ``keys`` (row, column, seed -> trial key) each cell."""
    if not spec.datasets:
        return {"": select_runs(spec, trials, dataset, code_version, _column_keys(keys, ""), data_fingerprint)}
    tagged = trials["column"].fillna("")
    selections = {
        column: select_runs(
            spec.on_dataset(column),
            trials[tagged == column],
            dataset,
            code_version,
            _column_keys(keys, column),
            data_fingerprint,
        )
        for column in spec.datasets
    }
    return _with_columnless(selections, trials[~tagged.isin(spec.datasets)], list(spec.datasets))


def _with_columnless(selections: dict[str, Selection], runs: pd.DataFrame, columns: list[str]) -> dict:
    """The selections, the runs of no dataset column of the spec (untagged, or another column) named among the
    first column's exclusions as about the whole table (a note of the table, the CSV's ``excluded_because``):
    none left out without a word."""
    if runs.empty:
        return selections
    first = selections[columns[0]]
    reasons = [
        f"dataset column {tag_text(c)}, which is not one of the spec's ({', '.join(columns)})" for c in runs["column"]
    ]
    excluded = pd.concat([first.excluded, runs.assign(reason=reasons)], ignore_index=True)
    first = dataclasses.replace(first, excluded=excluded, table_wide=first.table_wide | set(reasons))
    return {**selections, columns[0]: first}


def _column_keys(keys: Mapping[tuple[str, str, int], str] | None, column: str) -> dict[tuple[str, int], str] | None:
    """The (row, seed) -> key entries of one dataset column (None when there are no keys)."""
    if keys is None:
        return None
    return {(row, seed): key for (row, col, seed), key in keys.items() if col == column}


def _write_tables(spec: StudySpec, table: Table, markdown: str, out: Path, formats) -> list[Path]:
    files = []
    if "md" in formats:
        files.append(_write(out / f"{spec.name}.md", markdown))
    if "latex" in formats:
        fragment = render_latex(table)
        files.append(_write(out / f"{spec.name}.tex", fragment))
        files.append(_write(out / f"{spec.name}_standalone.tex", latex_document(fragment)))
    return files


def _write_csv(
    spec: StudySpec,
    selections: dict[str, Selection],
    trials: pd.DataFrame,
    delta_metrics,
    out: Path,
    paper: bool = True,
) -> list[Path]:
    """The table's numbers (a study that compares datasets: one line per row and dataset column, the column in
    ``dataset_column``; the paper's values only with ``paper``, as in the table) and every run found, with
    whether it is used and why not."""
    frames = []
    for column, selection in selections.items():
        view = spec.on_dataset(column)
        frame = results_frame(view, row_results(view, selection, compared_metrics(spec, delta_metrics)))
        frame.insert(frame.columns.get_loc("seeds_planned") + 1, "num_classes", _num_classes(frame["row"], selection))
        if column:
            frame.insert(1, "dataset_column", column)
        if not paper:  # the paper's numbers say nothing of these runs (the synthetic dataset's)
            frame = frame.drop(columns=[c for c in frame.columns if c.endswith("_paper")])
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    runs = trials.copy()
    used = pd.concat([s.chosen["run_id"] for s in selections.values()])
    runs["used"] = runs["run_id"].isin(used)
    reasons = {}
    for selection in selections.values():
        reasons.update(zip(selection.excluded["run_id"], selection.excluded["reason"], strict=True))
        for dup in selection.duplicates:
            for run_id in dup.others:
                reasons[run_id] = f"an older FINISHED run of ({dup.row}, seed {dup.seed}); the newest is {dup.chosen}"
    runs["excluded_because"] = runs["run_id"].map(lambda run_id: reasons.get(run_id, ""))
    paths = [out / f"{spec.name}.csv", out / f"{spec.name}_runs.csv"]
    for table, path in zip((frame, runs), paths, strict=True):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    return paths


def _num_classes(rows: pd.Series, selection: Selection) -> pd.Series:
    """Each row's number of classes (the ``model.num_classes`` of its chosen runs; chance top-1 is 100 / it
    percent); missing when its runs did not log it or disagree."""
    chosen = selection.chosen

    def one(row: str):
        found = chosen.loc[chosen["row"] == row, "num_classes"].dropna().unique() if len(chosen) else []
        return int(found[0]) if len(found) == 1 else pd.NA

    return pd.Series([one(r) for r in rows], index=rows.index, dtype="Int64")


#: In the figures folder, per study (``{}``): what its figures were drawn from, and their files (a report from
#: the same runs reuses them instead of drawing them again).
FIGURE_INPUTS = ".{}.inputs.json"
#: The code that draws them (imported only when they are drawn: matplotlib is slow to import).
FIGURES_CODE = Path(__file__).with_name("figures.py")


def _draw_figures(spec: StudySpec, selection: Selection, tracking_uri: str, out: Path, report: Report) -> None:
    """Draws the figures, unless those in ``out`` were drawn from the same spec and runs (then reused)."""
    digest = _figure_inputs(spec, selection)
    manifest = out / FIGURE_INPUTS.format(spec.name)
    try:
        saved = json.loads(manifest.read_text())
        files = {out / name: sha for name, sha in saved["files"].items()}
        if saved["inputs"] == digest and all(f.is_file() and file_digest(f) == sha for f, sha in files.items()):
            report.files += list(files)  # as drawn: none changed since
            return
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    before = len(report.files)
    _draw_all_figures(spec, selection, tracking_uri, out, report)
    drawn = {f.name: file_digest(f) for f in report.files[before:]}
    out.mkdir(parents=True, exist_ok=True)
    write_text(manifest, json.dumps({"inputs": digest, "files": drawn}))


def _figure_inputs(spec: StudySpec, selection: Selection) -> str:
    """What the figures show: the spec, the chosen runs (ids, statuses, values) and this module's code."""
    chosen = selection.chosen.to_dict("records") if len(selection.chosen) else []
    payload = json.dumps(
        {"spec": spec.raw, "runs": chosen, "code": FIGURES_CODE.read_bytes().hex()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _draw_all_figures(spec: StudySpec, selection: Selection, tracking_uri: str, out: Path, report: Report) -> None:
    from reports import figures

    results = row_results(spec, selection, ())
    frame = results_frame(spec, results)
    report.files += figures.plot_accuracy_vs_flops(frame, out / f"{spec.name}_top1_vs_gflops", title=spec.title)
    if spec.baseline is None:
        return
    base = _class_accuracy(spec.baseline, selection, tracking_uri)
    if base is None:
        report.warnings.append(f"no per-class figures: the baseline {spec.baseline!r} has no finished run with scores")
        return
    for row in spec.rows:
        if row.id == spec.baseline or row.reference:  # a published result has no scores
            continue
        acc = _class_accuracy(row.id, selection, tracking_uri)
        if acc is None or acc[1] != base[1]:
            report.warnings.append(f"no per-class figure for {row.id!r}: no finished run with scores of its classes")
            continue
        name = out / f"{spec.name}_classes_{row.id}"
        baseline_label = spec.row(spec.baseline).label
        report.files += figures.plot_class_improvements(acc[1], acc[0], base[0], name, row.label, baseline_label)


def _class_accuracy(row: str, selection: Selection, tracking_uri: str):
    chosen = selection.chosen
    finished = chosen[(chosen["row"] == row) & (chosen["status"] == STATUS_FINISHED)]
    scores = [download_scores(run_id, tracking_uri) for run_id in finished["run_id"]]
    scores = [s for s in scores if s is not None]
    return mean_per_class_accuracy(scores) if scores else None


def _write(path: Path, text: str) -> Path:
    return write_text(path, text)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m reports.make``."""
    p = argparse.ArgumentParser(
        prog=command_name("python -m reports.make"),
        description="Build a study's tables (Markdown, LaTeX, CSV) and figures from its MLflow runs.",
        epilog="Example: python -m reports.make studies/table8.yaml --format md,latex --out outputs/table8",
    )
    p.add_argument("study", help="the study spec file (studies/table8.yaml) or a study name (table8)")
    p.add_argument("--format", default=",".join(FORMATS), help="comma-separated: md, latex, csv (default: all)")
    p.add_argument(
        "--out",
        type=Path,
        help="output directory (default: outputs/reports/<study>; with --dataset, --code-version or "
        "--data-fingerprint, a folder beside it named for them, e.g. outputs/reports/<study>-dataset-synthetic)",
    )
    p.add_argument(
        "--mlflow-uri", help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})"
    )
    p.add_argument("--no-figures", action="store_true", help="write the tables only")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's reported values")
    p.add_argument("--delta", default="top1", help="metrics compared to the baseline, comma-separated (top1)")
    p.add_argument("--decimals", type=int, default=1, help="decimals of accuracies (default: 1)")
    p.add_argument("--dataset", help="use only runs of this dataset (default: the one with most finished runs)")
    p.add_argument("--code-version", help="use only runs of this code version (default: as for --dataset)")
    p.add_argument(
        "--data-fingerprint", help="use only runs on data of this fingerprint (sha256:...; default: as for --dataset)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 2 bad spec, study or arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.decimals < 0:
        parser.error(f"--decimals must be 0 or more, got {args.decimals}")
    try:
        report = make_report(
            find_spec(args.study),
            out=args.out,
            tracking_uri=args.mlflow_uri,
            formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
            draw_figures=not args.no_figures,
            paper=False if args.no_paper else None,
            delta_metrics=tuple(m.strip() for m in args.delta.split(",") if m.strip()),
            decimals=args.decimals,
            dataset=args.dataset,
            code_version=args.code_version,
            data_fingerprint=args.data_fingerprint,
        )
    except (SpecError, StudyNotFoundError, ValueError, TrackingUnreachable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.markdown)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for path in report.files:
        print(f"wrote {path}")
    for path in report.removed:
        print(f"removed {path} (the study's last report there wrote it; this one did not)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
