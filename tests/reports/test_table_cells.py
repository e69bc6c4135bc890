"""Cells and notes of a table built from run records with chosen values (no MLflow): each number a reader sees
is the one computed, and nothing averaged away goes unsaid."""

from __future__ import annotations

import math

import pytest

from reports.collect import runs_frame
from reports.results import results_frame, row_results
from reports.select import select_runs
from reports.table import ColumnKind, build_table, footnote_mark
from study import mlflow_schema as S
from study.spec import parse_spec

T0 = 1_735_689_600_000  # 2025-01-01, in ms
FINISHED = S.STATUS_FINISHED


def a_spec(rows: list[dict], seeds=(0, 1, 2), baseline: str | None = "a", columns=None) -> object:
    raw = {
        "name": "cells",
        "title": "Table 9: Cells.",
        "overrides": ["data=something_v1"],
        "seeds": list(seeds),
        "protocol": {"clips": 1, "crops": 1},
        "columns": columns or ["params", "flops", "top1", "top5"],
        "rows": rows,
    }
    return parse_spec({**raw, "baseline": baseline} if baseline else raw)


def runs(*entries: tuple) -> object:
    """``(row, seed, status, top1, top5[, params])`` each: the tidy runs frame ``reports.collect`` builds."""
    records = []
    for i, (row, seed, status, top1, top5, *params) in enumerate(entries):
        records.append(
            dict(
                run_id=f"run{i:03d}", parent_run_id="p", study="cells", row=row, row_label=row, seed=seed,
                status=status, trial_key=f"{row}-{seed}", git_commit="abc", code_version="v", data_fingerprint="fp",
                dataset="something_v1", column=None, protocol="1x1", num_classes=174, error=None,
                superseded_by=None, start_time=T0 + 60_000 * i, end_time=T0 + 60_000 * i + 1, top1=top1, top5=top5,
                test_loss=None, test_videos=None, params=params[0] if params else 30e6, flops=33e9,
            )
        )  # fmt: skip
    return runs_frame(records)


def table_of(spec, frame, **kwargs):
    return build_table(spec, select_runs(spec, frame), {}, generated="2025-01-01 00:00 UTC", **kwargs)


def cell(table, row_id: str, name: str, kind: ColumnKind) -> object:
    row = next(r for r in table.rows if r.id == row_id)
    return next(c for col, c in zip(table.columns, row.cells, strict=True) if col.name == name and col.kind is kind)


ROWS = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]


def test_a_finished_seed_without_an_accuracy_is_marked_and_named():
    """B's three seeds finished, but seed 1 logged no top1 and seeds 1, 2 no top5: its means are over fewer
    seeds than its Seeds cell says finished, and a note says which."""
    frame = runs(
        *[("a", s, FINISHED, 50.0 + s, 80.0) for s in range(3)],
        ("b", 0, FINISHED, 60.0, 90.0),
        ("b", 1, FINISHED, math.nan, None),
        ("b", 2, FINISHED, 62.0, None),
    )
    table = table_of(a_spec(ROWS), frame, delta_metrics=("top1", "top5"))
    seeds = cell(table, "b", "seeds", ColumnKind.SEEDS)
    assert (seeds.text, seeds.mark) == ("3/3", "a")
    note = next(n for n in table.notes if n.mark == "a")
    assert note.text == (
        "B: seed 1 finished without a Top1 value (left out of it); seeds 1, 2 finished without a Top5 value "
        "(left out of it)."
    )
    assert cell(table, "b", "top1", ColumnKind.MEASURED).text == "61.0 ± 1.4"
    assert cell(table, "a", "seeds", ColumnKind.SEEDS).mark == ""


def test_a_difference_over_fewer_seeds_than_the_rows_mean_says_how_many():
    """The baseline's seed 2 failed: B's mean is over 3 seeds, its paired difference over 2, which it says."""
    frame = runs(
        ("a", 0, FINISHED, 50.0, 80.0), ("a", 1, FINISHED, 50.2, 80.0), ("a", 2, "FAILED", None, None),
        ("b", 0, FINISHED, 50.1, 80.0), ("b", 1, FINISHED, 50.3, 80.0), ("b", 2, FINISHED, 47.0, 80.0),
    )  # fmt: skip
    table = table_of(a_spec(ROWS), frame)
    assert cell(table, "b", "top1", ColumnKind.DELTA).text == "+0.1 [+0.1, +0.1] (2 seeds)"
    full = runs(*[(row, s, FINISHED, 50.0 + s + (row == "b"), 80.0) for row in "ab" for s in range(3)])
    assert "seeds" not in cell(table_of(a_spec(ROWS), full), "b", "top1", ColumnKind.DELTA).text


def test_a_difference_in_params_is_in_the_columns_unit():
    frame = runs(
        *[("a", s, FINISHED, 50.0, 80.0, 30.3e6) for s in range(3)],
        *[("b", s, FINISHED, 51.0, 81.0, 36.0e6) for s in range(3)],
    )
    table = table_of(a_spec(ROWS), frame, delta_metrics=("top1", "params"))
    assert cell(table, "b", "params", ColumnKind.DELTA).text == "+5.7M"
    titles = [c.title for c in table.columns if c.kind is ColumnKind.DELTA]
    assert titles == ["ΔTop1 (95% CI)", "ΔParam"]  # one network's size against another's: no interval
    assert cell(table, "b", "params", ColumnKind.MEASURED).text == "36.0M"
    frame = runs(
        *[("a", s, FINISHED, 50.0, 80.0, 30.30e6) for s in range(3)],
        *[("b", s, FINISHED, 51.0, 81.0, 30.34e6) for s in range(3)],
    )
    small = table_of(a_spec(ROWS), frame, delta_metrics=("params",))
    assert cell(small, "b", "params", ColumnKind.DELTA).text == "+0.04M"  # not +0.0M


@pytest.mark.parametrize(
    ("diffs", "shown", "mark"),
    [
        ((0.02, 0.03, 0.04), "+0.03 [+0.01, +0.05]", "*"),  # a significant mean never prints as +0.0
        ((0.1, 0.3, 0.2, -0.05, 0.35), "+0.18 [-0.02, +0.38]", ""),  # a bound below zero never prints as +0.0
        ((0.0, 0.0, 0.0), "+0.0 [+0.0, +0.0]", ""),  # exact zeros keep the table's decimals
    ],
)
def test_the_mean_and_bounds_of_a_difference_show_their_sign(diffs, shown, mark):
    seeds = tuple(range(len(diffs)))
    frame = runs(
        *[("a", s, FINISHED, 50.0, 80.0) for s in seeds],
        *[("b", s, FINISHED, 50.0 + d, 80.0) for s, d in zip(seeds, diffs, strict=True)],
    )
    delta = cell(table_of(a_spec(ROWS, seeds=seeds), frame), "b", "top1", ColumnKind.DELTA)
    assert (delta.text, delta.mark) == (shown, mark)


def test_the_papers_difference_is_the_one_a_reader_computes_from_the_printed_numbers():
    """Seeds 49.2 and 49.3 average to exactly 49.25, printed 49.2 (round half to even): beside the paper's
    49.3 the difference printed is -0.1, as the printed numbers say, not +0.0."""
    rows = [{"id": "a", "label": "A", "paper": {"top1": 49.3}}]
    frame = runs(("a", 0, FINISHED, 49.2, 80.0), ("a", 1, FINISHED, 49.3, 80.0))
    table = table_of(a_spec(rows, seeds=(0, 1), baseline=None), frame)
    assert cell(table, "a", "top1", ColumnKind.MEASURED).text == "49.2 ± 0.1"
    assert cell(table, "a", "top1", ColumnKind.PAPER).text == "49.3 (-0.1)"


def test_footnote_marks_go_on_after_z():
    assert [footnote_mark(i) for i in (0, 25, 26, 27, 51, 52, 701, 702)] == [
        "a", "z", "aa", "ab", "az", "ba", "zz", "aaa",
    ]  # fmt: skip


def test_a_table_with_more_incomplete_rows_than_letters_is_built():
    rows = [{"id": f"r{i}", "label": f"R{i}"} for i in range(30)]
    frame = runs(*[(f"r{i}", 0, FINISHED, 50.0, 80.0) for i in range(30)])
    table = table_of(a_spec(rows, seeds=(0, 1), baseline=None), frame)
    assert [n.mark for n in table.notes if n.mark][-4:] == ["aa", "ab", "ac", "ad"]


def test_csv_counts_are_whole_numbers_and_a_reference_row_plans_no_seeds():
    rows = [*ROWS, {"id": "tsm", "label": "TSM", "reference": {"top1": 45.6, "source": "Lin et al."}}]
    frame = runs(*[(r, s, FINISHED, 50.0 + s, 80.0) for r in "ab" for s in range(3)])
    spec = a_spec(rows)
    csv = results_frame(spec, row_results(spec, select_runs(spec, frame), ("top1",))).set_index("row")
    assert str(csv["top1_delta_n"].dtype) == "Int64" and csv.loc["b", "top1_delta_n"] == 3
    assert csv["top1_delta_n"].isna()["a"]
    assert csv.to_csv().splitlines()[2].endswith(",0.0,0.0,0.0,3")  # b: its difference and its count, 3
    assert (csv.loc["tsm", "seeds_planned"], csv.loc["tsm", "top1_n"]) == (0, 1)
    assert csv.loc["a", "seeds_planned"] == 3


def test_a_descriptive_column_named_like_a_count_is_left_as_text():
    rows = [{"id": r, "label": r.upper(), "cells": {"kernel_n": text}} for r, text in (("a", "3x3"), ("b", "-"))]
    spec = a_spec(rows, columns=["kernel_n", "top1"])
    frame = runs(*[(r, s, FINISHED, 50.0, 80.0) for r in "ab" for s in range(3)])
    csv = results_frame(spec, row_results(spec, select_runs(spec, frame), ("top1",)))
    assert list(csv["kernel_n"]) == ["3x3", "-"]
