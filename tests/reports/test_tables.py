"""Tables from fixture runs in a real MLflow store: golden Markdown and LaTeX, and the rules behind them."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from reports.collect import collect_runs
from reports.latex import escape_latex, render_latex
from reports.markdown import escape_markdown, render_markdown
from reports.select import select_runs
from reports.table import ColumnKind, build_table, signed
from tests.reports.golden_files import check_golden, mask_run_ids

DATE = "2025-01-01 00:00 UTC"
MEASURED, PAPER, DELTA, SEEDS = ColumnKind.MEASURED, ColumnKind.PAPER, ColumnKind.DELTA, ColumnKind.SEEDS


@pytest.fixture(scope="module")
def store(fixture_store):
    uri, spec = fixture_store
    runs = collect_runs(spec.name, uri)
    return spec, runs, select_runs(spec, runs.trials)


@pytest.fixture(scope="module")
def table(store):
    spec, runs, sel = store
    return build_table(spec, sel, runs.study_hashes, generated=DATE)


def cells(table, row_id):
    """The row's cells by (column name, column kind): ``cells(table, "eab")["top1", DELTA]``."""
    row = next(r for r in table.rows if r.id == row_id)
    return {(c.name, c.kind): cell for c, cell in zip(table.columns, row.cells, strict=True)}


def test_markdown_matches_golden(table):
    check_golden("fixture_blocks.md", mask_run_ids(render_markdown(table)))


def test_latex_matches_golden(table):
    check_golden("fixture_blocks.tex", mask_run_ids(render_latex(table)))


def test_markdown_without_paper_columns_matches_golden(store):
    spec, runs, sel = store
    table = build_table(spec, sel, runs.study_hashes, paper=False, delta_metrics=("top1", "top5"), generated=DATE)
    check_golden("fixture_blocks_nopaper.md", mask_run_ids(render_markdown(table)))


def test_columns_follow_the_spec_then_deltas_and_seeds(table):
    assert [c.title for c in table.columns] == [
        "Models",
        "RFS",
        "Multi-scale?",
        "Param",
        "FLOPs",
        "Top1 (%)",
        "Top1 paper (Δ)",
        "Top5 (%)",
        "Top5 paper (Δ)",
        "ΔTop1 (95% CI)",
        "Seeds",
    ]
    assert [r.id for r in table.rows] == ["only_soitr", "s_block", "l_block", "incep_block", "eab", "dead_block"]
    groups = {(c.name, c.kind): c.group for c in table.columns}
    assert {k for k, g in groups.items() if g} == {
        ("top1", MEASURED),
        ("top1", PAPER),
        ("top5", MEASURED),
        ("top5", PAPER),
    }
    assert groups["top1", MEASURED] == "Something V1"


def test_mean_std_units_and_paper_values(table):
    base = cells(table, "only_soitr")
    assert (
        base["top1", MEASURED].text == "49.3 ± 0.2"
        and base["params", MEASURED].text == "30.3M"
        and base["flops", MEASURED].text == "33.8G"
    )
    assert base["top5", PAPER].text == "77.9 (-0.1)"
    assert cells(table, "l_block")["params", MEASURED].text == "31.5M (paper 30.9M)"  # ours differs from the paper


def test_best_accuracy_is_bold_only_there(table):
    bold = {
        (r.id, c.name, c.kind) for r in table.rows for c, cell in zip(table.columns, r.cells, strict=True) if cell.bold
    }
    assert bold == {("eab", "top1", MEASURED), ("eab", "top5", MEASURED)}


def test_paired_difference_to_baseline_with_interval_and_mark(table):
    assert cells(table, "only_soitr")["top1", DELTA].text == "baseline"
    eab = cells(table, "eab")["top1", DELTA]
    assert eab.text == "+2.6 [+2.4, +2.8]" and eab.mark == "*"
    s_block = cells(table, "s_block")["top1", DELTA]
    assert s_block.text == "+0.2 [-0.1, +0.6]" and s_block.mark == ""
    assert cells(table, "dead_block")["top1", DELTA].text == "n/a"


def test_missing_failed_and_running_cells_are_marked_never_dropped(table):
    notes = {n.mark: n.text for n in table.notes}
    l_block, incep, dead = cells(table, "l_block"), cells(table, "incep_block"), cells(table, "dead_block")
    assert (l_block["seeds", SEEDS].text, l_block["seeds", SEEDS].mark) == ("2/3", "a")
    assert notes["a"] == "+L-Block: seed 2 missing."
    assert (incep["seeds", SEEDS].text, incep["seeds", SEEDS].mark) == ("2/3", "b")
    assert notes["b"] == "+Incep_Block #2 & 50% {x}: seed 1 failed (CUDA out of memory)."
    assert dead["top1", MEASURED].text == "running" and dead["seeds", SEEDS].text == "0/3"
    assert notes["c"] == "+Dead-Block: seed 0 failed (NaN loss at epoch 3); seed 1 running; seed 2 missing."
    assert dead["params", MEASURED].text == "31.0M"  # the model's size is known from the failed run
    assert cells(table, "eab")["seeds", SEEDS].mark == ""


def test_excluded_runs_are_named_in_the_notes(table):
    text = " ".join(n.text for n in table.notes)
    assert "Not included: 1 run of protocol 10x3 (this table: 1x1, clips x crops): +EAB seed 0 (FINISHED)." in text
    assert "dataset kinetics400 (this table: something_v1): +EAB seed 1" in text
    assert "code version v2 (this table: v1): +EAB seed 2" in text
    assert "row 'old_row', which is not in the spec" in text


def test_duplicate_finished_runs_are_named_in_the_notes(store, table):
    spec, runs, sel = store
    trials = runs.trials
    first = trials[(trials["row"] == "eab") & (trials["seed"] == 0) & (trials["protocol"] == "1x1")]
    newer_id = "d" * 32
    newer = first.assign(run_id=newer_id, start_time=trials["start_time"].max() + pd.Timedelta(minutes=1), top1=52.0)
    dup_sel = select_runs(spec, pd.concat([trials, newer], ignore_index=True))
    dup_table = build_table(spec, dup_sel, runs.study_hashes, generated=DATE)
    note = f"2 FINISHED runs of +EAB seed 0: the newest (run {newer_id}) is shown; also {first['run_id'].iloc[0]}."
    assert [n.text for n in dup_table.notes] == [n.text for n in table.notes] + [note]
    assert dup_table.notes[-1].mark == ""
    assert f"\n{escape_markdown(note)}\n" in render_markdown(dup_table)
    assert f"\n{escape_latex(note)}\\par\n" in render_latex(dup_table)


def test_no_duplicate_note_without_duplicate_runs(store, table):
    spec, runs, sel = store
    assert sel.duplicates == ()
    assert not any("FINISHED runs of" in n.text for n in table.notes)
    assert "FINISHED runs of" not in render_markdown(table) and "FINISHED runs of" not in render_latex(table)


def test_provenance_names_hash_commit_runs_and_date(store, table):
    spec, runs, sel = store
    prov = table.provenance
    assert prov.generated == DATE and prov.git_commits == ("0123456789abcdef0123456789abcdef01234567",)
    assert prov.study_hashes == (prov.spec_hash,)  # the other invocation's hash belongs to an excluded run
    assert dict(prov.run_ids)["l_block"] == tuple(sel.chosen[sel.chosen["row"] == "l_block"]["run_id"])
    md, tex = render_markdown(table), render_latex(table)
    assert re.search(r"^\[\^provenance\]: Provenance: study fixture\\_blocks, spec hash [0-9a-f]{12}", md, re.M)
    assert all(run_id in md and run_id in tex for run_id in sel.chosen["run_id"])
    assert tex.startswith("% Generated by reports.make.\n% study fixture_blocks, spec hash")


def test_table_without_runs_marks_every_cell_missing(store):
    spec, runs, sel = store
    empty = select_runs(spec, runs.trials.iloc[0:0])
    table = build_table(spec, empty, {}, generated=DATE)
    assert all(cells(table, r)["top1", MEASURED].text == "missing" for r in spec.row_ids)
    assert all(cells(table, r)["seeds", SEEDS].text == "0/3" for r in spec.row_ids)
    assert "no runs" in table.caption


def test_a_table_of_the_baseline_alone_explains_no_difference(store):
    import dataclasses

    spec, runs, _ = store
    alone = dataclasses.replace(spec, rows=(spec.row(spec.baseline),))
    table = build_table(alone, select_runs(alone, runs.trials), runs.study_hashes, generated=DATE)
    assert not any("mean paired difference" in note.text for note in table.notes)
    full = build_table(spec, select_runs(spec, runs.trials), runs.study_hashes, generated=DATE)
    assert any("mean paired difference" in note.text for note in full.notes)


def test_signed_never_prints_negative_zero():
    assert signed(-0.02, 1) == "+0.0" and signed(-0.26, 1) == "-0.3" and signed(1.0, 2) == "+1.00"


@pytest.mark.parametrize(
    ("diffs", "shown"),
    [
        ((0.18, 0.28, 0.38), "+0.28 [+0.03, +0.53]"),  # one decimal would print [+0.0, +0.5] beside the mark
        ((2.5, 2.7, 2.6), "+2.6 [+2.4, +2.8]"),  # nothing hidden: one decimal
        ((-0.18, -0.28, -0.38), "-0.28 [-0.53, -0.03]"),
    ],
)
def test_an_interval_marked_as_excluding_zero_never_prints_a_zero_bound(diffs, shown):
    from types import SimpleNamespace

    from reports.stats import paired_difference
    from reports.table import _delta_cell

    delta = paired_difference({seed: 50.0 + d for seed, d in enumerate(diffs)}, dict.fromkeys(range(3), 50.0))
    res = SimpleNamespace(deltas={"top1": delta}, summaries={"top1": SimpleNamespace(n=3)})
    cell = _delta_cell(res, "top1", 1)
    assert delta.excludes_zero and (cell.text, cell.mark) == (shown, "*")


def test_an_interval_containing_zero_keeps_the_tables_decimals():
    from types import SimpleNamespace

    from reports.stats import paired_difference
    from reports.table import _delta_cell

    delta = paired_difference({0: 50.2, 1: 49.9, 2: 50.1}, {0: 50.0, 1: 50.0, 2: 50.0})
    res = SimpleNamespace(deltas={"top1": delta}, summaries={"top1": SimpleNamespace(n=3)})
    cell = _delta_cell(res, "top1", 1)
    assert not delta.excludes_zero and cell.mark == "" and cell.text == "+0.1 [-0.3, +0.4]"


def test_markdown_escapes_pipes_and_emphasis():
    assert escape_markdown("a|b *c* _d_ <e>") == "a\\|b \\*c\\* \\_d\\_ &lt;e&gt;"


@pytest.mark.parametrize(
    ("spec_change", "why"),
    [({"paper_dataset": "something_v2"}, "another dataset"), ({"paper_protocol": "10x3"}, "another protocol")],
)
def test_the_papers_numbers_are_compared_only_with_runs_like_them(store, spec_change, why):
    """Runs on another dataset (or protocol) than the paper's show the paper's value without a difference,
    and a note says what the paper's numbers are for."""
    from study.spec import parse_spec

    spec, runs, sel = store
    other = parse_spec({**spec.raw, **spec_change}, source=spec.source)
    table = build_table(other, select_runs(other, runs.trials), runs.study_hashes, generated=DATE)
    titles = [c.title for c in table.columns]
    assert "Top1 paper" in titles and "Top1 paper (Δ)" not in titles
    assert cells(table, "only_soitr")["top1", PAPER].text == "49.3"
    note = " ".join(n.text for n in table.notes)
    assert "no difference to it is shown" in note and "paper (Δ)" not in note
