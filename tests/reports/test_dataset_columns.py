"""A study that compares datasets side by side (Table 1: Something V1 and V2): the spec, the plan, the table."""

from __future__ import annotations

import pandas as pd
import pytest

from reports.collect import RUN_COLUMNS
from reports.latex import render_latex
from reports.make import select_columns
from reports.markdown import render_markdown
from reports.table import ColumnKind, build_table
from runners.plan import PlanError, build_plan
from study import mlflow_schema as S
from study.spec import SpecError, parse_spec

SPEC = {
    "name": "two_sets",
    "title": "Table 1: two datasets",
    "overrides": ["trainer=smoke"],
    "datasets": {"something_v1": {}, "something_v2": {"smoke": ["data.seed=1", "data.root=data/synthetic_seed1"]}},
    "seeds": [0, 1],
    "protocol": {"clips": 1, "crops": 1},
    "columns": ["frames", "flops", "top1"],
    "baseline": "tsn",
    "rows": [
        {
            "id": "tsm",
            "label": "TSM",
            "cells": {"frames": "8"},
            "reference": {"flops": 33, "top1": 45.6, "something_v2": {"top1": 58.8}, "source": "TSM paper"},
        },
        {
            "id": "tsn",
            "label": "TSN",
            "overrides": ["model.temporal_conv=false"],
            "cells": {"frames": "4"},
            "paper": {"flops": 16, "top1": 19.5, "something_v2": {"top1": 33.4}},
        },
        {
            "id": "conv",
            "label": "+conv",
            "overrides": [],
            "cells": {"frames": "4"},
            "paper": {"top1": 40.0, "something_v2": {"top1": 50.0}},
        },
    ],
    "profiles": {
        "smoke": ["data=synthetic", "model.pretrained=null", "model.backbone=resnet18", "model.num_segments=4"]
    },
}


def spec_with(**changes):
    return parse_spec({**SPEC, **changes}, source="two_sets.yaml")


def test_a_spec_gives_each_dataset_its_paper_numbers_and_profile_refinements():
    spec = spec_with()
    assert spec.columns_of_data == ("something_v1", "something_v2") and spec.paper_dataset == "something_v1"
    v2 = spec.on_dataset("something_v2")
    assert v2.overrides == ("trainer=smoke", "data=something_v2") and v2.paper_dataset == "something_v2"
    assert v2.row("tsn").paper == {"flops": 16.0, "top1": 33.4}  # the cost carries over, the accuracy is V2's
    assert v2.row("tsm").reference == {"flops": 33.0, "top1": 58.8}
    assert v2.profiles["smoke"][-2:] == ("data.seed=1", "data.root=data/synthetic_seed1")
    v1 = spec.on_dataset("something_v1")
    assert (
        v1.row("tsn").paper == {"flops": 16.0, "top1": 19.5} and list(v1.profiles["smoke"]) == SPEC["profiles"]["smoke"]
    )
    with pytest.raises(KeyError, match="datasets: something_v1, something_v2"):
        spec.on_dataset("kinetics400")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"datasets": {"something_v1": {}}}, "at least two dataset names"),
        ({"overrides": ["data=something_v1"]}, "remove data=something_v1"),
        ({"paper_dataset": "something_v1"}, "remove paper_dataset"),
        ({"datasets": {"something_v1": {}, "something_v2": ["x=1"]}}, "datasets.something_v2 must map profile names"),
        ({"datasets": {"something_v1": {}, "something_v2": {"smoke": ["model._target_=os.system"]}}}, "data only"),
    ],
)
def test_bad_dataset_columns_are_refused(changes, message):
    with pytest.raises(SpecError, match=message):
        spec_with(**changes)


def test_a_paper_value_for_a_dataset_that_is_not_a_column_is_refused_naming_the_columns():
    rows = [dict(SPEC["rows"][1], paper={"top1": 19.5, "kinetics400": {"top1": 1.0}})]
    with pytest.raises(SpecError, match=r"unknown measured column 'kinetics400'.*something_v2 \(its values"):
        spec_with(rows=rows, baseline=None)


def test_each_trained_row_is_planned_once_per_dataset_column(tmp_path):
    spec = spec_with()
    profile = list(spec.profiles["smoke"])
    trials = build_plan(spec, profile, [], [0], tmp_path, profile_name="smoke")
    assert [(t.column, t.row.id) for t in trials] == [
        ("something_v1", "tsn"),
        ("something_v1", "conv"),
        ("something_v2", "tsn"),
        ("something_v2", "conv"),
    ]
    assert trials[2].name == "two_sets/tsn/something_v2/seed0"
    assert trials[0].config["data"]["seed"] == 0 and trials[2].config["data"]["seed"] == 1
    assert len({t.key for t in trials}) == 4


def test_a_profile_that_makes_two_dataset_columns_the_same_training_is_refused(tmp_path):
    """Without the V2 column's refinement, the smoke profile trains the same network on the same synthetic data
    in both columns: one would train twice under one key."""
    spec = spec_with(datasets={"something_v1": {}, "something_v2": {}})
    with pytest.raises(PlanError, match=r"same data in dataset columns something_v1, something_v2"):
        build_plan(spec, list(spec.profiles["smoke"]), [], [0], tmp_path, profile_name="smoke")


def _runs(dataset_of_runs: str | None = None) -> pd.DataFrame:
    """Tidy runs: TSN and +conv at seeds 0, 1 on each dataset column (V2's numbers 20 points higher)."""
    records = []
    for column, shift in (("something_v1", 0.0), ("something_v2", 20.0)):
        for row, top1 in (("tsn", (20.0, 22.0)), ("conv", (40.0, 44.0))):
            for seed in (0, 1):
                records.append(
                    {
                        **dict.fromkeys(RUN_COLUMNS),
                        "run_id": f"{column}-{row}-{seed}",
                        "row": row,
                        "seed": seed,
                        "status": S.STATUS_FINISHED,
                        "code_version": "v",
                        "dataset": dataset_of_runs or column,
                        "column": column,
                        "protocol": "1x1",
                        "start_time": len(records),
                        "top1": top1[seed] + shift,
                        "params": 1e6,
                        "flops": 16e9,
                    }
                )
    return pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))


def _cells(table, row_id):
    row = next(r for r in table.rows if r.id == row_id)
    return {(c.name, c.kind, c.part): cell.text for c, cell in zip(table.columns, row.cells, strict=True)}


def test_the_table_has_a_group_per_dataset_with_its_runs_and_its_paper_numbers():
    spec = spec_with()
    table = build_table(spec, select_columns(spec, _runs()), generated="2025-01-01 00:00 UTC")
    groups = [c.group for c in table.columns if c.group]
    assert groups.count("Something V1") == groups.count("Something V2") == 4  # Top1, paper, ΔTop1, Seeds
    conv = _cells(table, "conv")
    assert conv["top1", ColumnKind.MEASURED, 0] == "42.0 ± 2.8" and conv["top1", ColumnKind.MEASURED, 1] == "62.0 ± 2.8"
    assert conv["top1", ColumnKind.PAPER, 0] == "40.0 (+2.0)" and conv["top1", ColumnKind.PAPER, 1] == "50.0 (+12.0)"
    assert conv["top1", ColumnKind.DELTA, 1].startswith("+21.0") and conv["seeds", ColumnKind.SEEDS, 1] == "2/2"
    assert conv["flops", ColumnKind.MEASURED, 0] == "16.0G"  # costs once, not per dataset
    assert sum(1 for c in table.columns if c.name == "flops") == 1
    tsm = _cells(table, "tsm")
    assert tsm["top1", ColumnKind.MEASURED, 0] == "45.6" and tsm["top1", ColumnKind.MEASURED, 1] == "58.8"
    assert table.caption.startswith("Something V1 and Something V2, protocol 1x1")
    assert r"\multicolumn{4}{c}{Something V1} & \multicolumn{4}{c}{Something V2}" in render_latex(table)
    header = render_markdown(table).splitlines()[2]  # a pipe table has no group row: the titles carry the group
    assert "Something V1 Top1 (%)" in header and "Something V2 Seeds" in header and "V1 FLOPs" not in header


def test_runs_on_another_dataset_than_the_column_show_the_papers_number_without_a_difference():
    """The smoke profile runs both columns on synthetic data: each group says so and no Δ to the paper is shown."""
    spec = spec_with()
    table = build_table(spec, select_columns(spec, _runs("synthetic")), generated="2025-01-01 00:00 UTC")
    assert "Something V2 (runs on Synthetic)" in {c.group for c in table.columns}
    assert _cells(table, "conv")["top1", ColumnKind.PAPER, 1] == "50.0"
    assert any("on Something V2 with protocol 1x1; these runs are on Synthetic" in n.text for n in table.notes)


def test_a_dataset_chosen_on_the_command_line_restricts_every_dataset_column():
    """Each column holds smoke runs (synthetic data, 1 seed) and real ones (2 seeds): by default the most finished
    runs are chosen (the real ones); ``--dataset synthetic`` chooses the smoke runs in every column."""
    spec = spec_with()
    smoke = _runs("synthetic")
    smoke = smoke[smoke["seed"] == 0].assign(run_id=lambda f: "smoke-" + f["run_id"], start_time=100)
    runs = pd.concat([_runs(), smoke], ignore_index=True)
    chosen = select_columns(spec, runs)
    assert {c: s.dataset for c, s in chosen.items()} == {"something_v1": "something_v1", "something_v2": "something_v2"}
    chosen = select_columns(spec, runs, dataset="synthetic")
    assert {s.dataset for s in chosen.values()} == {"synthetic"}
    assert all(set(s.chosen["run_id"]) == set(smoke[smoke["column"] == c]["run_id"]) for c, s in chosen.items())


def test_the_caption_names_each_evaluation_rows_protocol_beside_the_studys():
    """Table 4: the 16-frame network tested with 1 clip (the study's protocol) and, as an evaluation row, 2 clips."""
    rows = [
        {"id": "base", "label": "EAN16F", "overrides": [], "cells": {"frames": "16"}},
        {
            "id": "base_2",
            "label": "EAN16F x2",
            "evaluate": "base",
            "protocol": {"clips": 2, "crops": 1},
            "cells": {"frames": "16x2"},
        },
    ]
    spec = parse_spec({**SPEC, "datasets": None, "rows": rows, "baseline": None} | {"overrides": []})
    table = build_table(spec, select_columns(spec, _runs().iloc[:0]), generated="2025-01-01 00:00 UTC")
    assert "protocol 1x1 (EAN16F x2: 2x1) (clips x crops)" in table.caption
    rows[1]["label"] = "EAN16F"  # the paper's Table 4 prints both rows so
    spec = parse_spec({**SPEC, "datasets": None, "rows": rows, "baseline": None} | {"overrides": []})
    table = build_table(spec, select_columns(spec, _runs().iloc[:0]), generated="2025-01-01 00:00 UTC")
    assert "protocol 1x1 (EAN16F, row base_2: 2x1) (clips x crops)" in table.caption


def test_runs_of_no_dataset_column_are_named_not_dropped():
    """A run without a column tag, or of a column the spec no longer has, is in no column's cells: the first
    column's notes name it (and the CSV's ``excluded_because``), with the spec's columns."""
    spec = spec_with()
    odd = _runs().iloc[:2].assign(run_id=["untagged", "gone"], column=[None, "kinetics400"])
    chosen = select_columns(spec, pd.concat([_runs(), odd], ignore_index=True))
    assert all(len(s.chosen) == 4 for s in chosen.values())
    first = chosen["something_v1"].excluded
    assert dict(zip(first["run_id"], first["reason"], strict=True)) == {
        "untagged": "dataset column (untagged), which is not one of the spec's (something_v1, something_v2)",
        "gone": "dataset column kinetics400, which is not one of the spec's (something_v1, something_v2)",
    }
    assert chosen["something_v2"].excluded.empty
    table = build_table(spec, chosen, generated="2025-01-01 00:00 UTC")
    notes = [n.text for n in table.notes if "which is not one of the spec's" in n.text]
    assert len(notes) == 2 and all(n.startswith("Not included: 1 run of dataset column") for n in notes)  # unprefixed
