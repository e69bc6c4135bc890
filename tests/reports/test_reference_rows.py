"""Reference rows: a published result beside ours, trained by nobody here, marked in every output."""

from __future__ import annotations

import pytest

from reports.collect import collect_runs
from reports.latex import render_latex
from reports.markdown import render_markdown
from reports.results import results_frame, row_results
from reports.select import select_runs
from reports.table import ColumnKind, build_table
from study.find import find_spec
from study.spec import SpecError, load_spec, parse_spec

TSM = {
    "id": "tsm",
    "label": "TSM",
    "cells": {"rfs": "-", "multi_scale": "-"},
    "reference": {"flops": 33, "top1": 99.0, "top5": 99.5, "source": "Lin et al., ICCV 2019, Table 1"},
}


@pytest.fixture(scope="module")
def with_reference(fixture_store):
    uri, spec = fixture_store
    spec = parse_spec({**spec.raw, "rows": [TSM, *spec.raw["rows"]]}, source=spec.source)
    runs = collect_runs(spec.name, uri)
    selection = select_runs(spec, runs.trials)
    return spec, selection, build_table(spec, selection, runs.study_hashes, generated="2025-01-01 00:00 UTC")


def row_cells(table, row_id):
    row = next(r for r in table.rows if r.id == row_id)
    return {(c.name, c.kind): cell for c, cell in zip(table.columns, row.cells, strict=True)}


def test_a_reference_row_shows_its_published_values_marked_and_never_bold(with_reference):
    _, _, table = with_reference
    cells = row_cells(table, "tsm")
    assert cells["label", ColumnKind.LABEL].text == "TSM†"
    assert cells["top1", ColumnKind.MEASURED].text == "99.0" and not cells["top1", ColumnKind.MEASURED].bold
    assert cells["flops", ColumnKind.MEASURED].text == "33.0G" and cells["params", ColumnKind.MEASURED].text == "-"
    assert cells["seeds", ColumnKind.SEEDS].text == "published" and cells["top1", ColumnKind.DELTA].text == ""
    assert row_cells(table, "eab")["top1", ColumnKind.MEASURED].bold  # the best of ours, though 99.0 is higher
    assert any(
        "† Published results, not trained here (TSM: Lin et al., ICCV 2019, Table 1)" in n.text for n in table.notes
    )


def test_markdown_latex_and_csv_say_which_rows_are_published(with_reference):
    spec, selection, table = with_reference
    assert "| TSM† " in render_markdown(table)
    assert r"TSM\textsuperscript{\dag}" in render_latex(table)
    frame = results_frame(spec, row_results(spec, selection))
    tsm = frame[frame["row"] == "tsm"].iloc[0]
    assert tsm["kind"] == "reference" and tsm["source"].startswith("Lin et al.") and tsm["top1_mean"] == 99.0
    assert set(frame.loc[frame["row"] != "tsm", "kind"]) == {"trained"}


def test_a_reference_row_is_never_planned(with_reference, tmp_path):
    from runners.plan import build_plan

    spec, _, _ = with_reference
    spec = parse_spec(
        {**spec.raw, "rows": [r for r in spec.raw["rows"] if r["id"] in ("tsm", "eab")], "baseline": "eab"}
    )
    smoke = ["data=synthetic", "trainer=smoke", "model.backbone=resnet18", "model.pretrained=null"]
    trials = build_plan(spec, smoke, [], [0], tmp_path)
    assert "tsm" not in {t.row.id for t in trials} and trials


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reference": {"top1": 1.0}}, "'source' saying where it is published"),
        ({"reference": {"top1": 1.0, "top9": 2.0, "source": "x"}}, "unknown measured column 'top9'.*source"),
        ({"reference": {"top1": "high", "source": "x"}}, "reference.top1 must be a number"),
        ({"overrides": ["block=eab"]}, "takes no overrides"),
        ({"paper": {"top1": 1.0}}, "takes no paper"),
    ],
)
def test_a_bad_reference_row_is_refused_naming_the_problem(fixture_store, change, message):
    _, spec = fixture_store
    row = {**TSM, **change}
    with pytest.raises(SpecError, match=message):
        parse_spec({**spec.raw, "rows": [row, *spec.raw["rows"]]})


def test_a_reference_row_can_be_neither_baseline_nor_ensemble_member(fixture_store):
    _, spec = fixture_store
    with pytest.raises(SpecError, match="baseline 'tsm' is not a row id"):
        parse_spec({**spec.raw, "rows": [TSM, *spec.raw["rows"]], "baseline": "tsm"})
    ensemble = {"id": "en", "label": "En", "cells": TSM["cells"], "ensemble": ["tsm", "eab"]}
    with pytest.raises(SpecError, match="ensemble must name at least two earlier trained rows"):
        parse_spec({**spec.raw, "rows": [TSM, *spec.raw["rows"], ensemble]})


def test_a_spec_and_its_rows_may_carry_notes_the_table_prints(fixture_store):
    """``note:`` on any row (Table 3's TSM8F: the paper's number comes from Kinetics pre-training, ours from
    ImageNet) is a note of the table, ``Label: note``; a note that is not a string is refused."""
    uri, spec = fixture_store
    rows = [{**TSM, "note": " published with Kinetics pre-training "}, *spec.raw["rows"]]
    noted = parse_spec({**spec.raw, "rows": rows, "notes": ["FLOPs per 224×224 clip."]}, source=spec.source)
    runs = collect_runs(noted.name, uri)
    table = build_table(noted, select_runs(noted, runs.trials), runs.study_hashes, generated="2025-01-01 00:00 UTC")
    assert [n.text for n in table.notes if n.text.startswith("TSM:")] == ["TSM: published with Kinetics pre-training"]
    assert "TSM: published with Kinetics pre-training" in render_markdown(table)
    assert "FLOPs per 224×224 clip." in [n.text for n in table.notes]  # the spec's own notes
    with pytest.raises(SpecError, match="note must be a string"):
        parse_spec({**spec.raw, "rows": [{**TSM, "note": ["a"]}, *spec.raw["rows"]]})
    table3 = load_spec(find_spec("table3"))
    assert table3.row("tsm8f").note.startswith("the paper's 45.6 is TSM's own result, pre-trained on Kinetics")
    assert load_spec(find_spec("table1")).notes[0].startswith("FLOPs of the rows whose Frames read frames×views")
    with pytest.raises(SpecError, match="notes"):
        parse_spec({**spec.raw, "notes": "one"})
