"""MLflow -> tidy runs table, and the choice of runs: one per (row, seed), incompatible runs left out and named."""

from __future__ import annotations

import pandas as pd
import pytest

from reports.collect import RUN_COLUMNS, StudyNotFoundError, collect_runs, runs_frame
from reports.select import Duplicate, describe_duplicates, describe_exclusions, describe_test_videos, select_runs
from tests.reports.mlflow_fixture import OTHER_STUDY_HASH, RUNS


@pytest.fixture(scope="module")
def collected(fixture_store):
    uri, spec = fixture_store
    return spec, collect_runs(spec.name, uri)


def test_collect_reads_every_trial_run_as_a_tidy_row(collected):
    spec, runs = collected
    trials = runs.trials
    assert tuple(trials.columns) == RUN_COLUMNS
    assert len(trials) == len(RUNS)
    assert list(zip(trials["row"], trials["seed"], trials["status"], strict=True)) == [r[:3] for r in RUNS]
    assert str(trials["seed"].dtype) == "Int64"
    eab0 = trials[(trials["row"] == "eab") & (trials["seed"] == 0) & (trials["protocol"] == "1x1")].iloc[0]
    assert eab0["top1"] == pytest.approx(51.7) and eab0["params"] == 36_021_000 and eab0["dataset"] == "something_v1"
    failed = trials[trials["status"] == "FAILED"]
    assert failed["top1"].isna().all() and set(failed["error"]) >= {"CUDA out of memory", "NaN loss at epoch 3"}
    assert trials["start_time"].is_monotonic_increasing


def test_collect_reads_study_hashes_of_parent_runs(collected):
    spec, runs = collected
    assert len(runs.study_hashes) == 3
    assert OTHER_STUDY_HASH in runs.study_hashes.values()
    assert set(runs.trials["parent_run_id"]) <= set(runs.study_hashes)


def test_unknown_study_is_an_error_naming_the_experiments(fixture_store):
    uri, spec = fixture_store
    with pytest.raises(StudyNotFoundError, match=r"no MLflow experiment named 'table99'.*fixture_blocks"):
        collect_runs("table99", uri)


def test_the_experiments_named_leave_out_the_runners_locks(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = MlflowClient(uri)
    for name in ("table8", "ean-claim/0123abcd", "ean-lease/1"):
        client.create_experiment(name)
    with pytest.raises(StudyNotFoundError, match=r"named 'table99'") as refused:
        collect_runs("table99", uri)
    assert (
        "table8" in str(refused.value)
        and "ean-claim" not in str(refused.value)
        and "ean-lease" not in str(refused.value)
    )


def test_missing_sqlite_file_is_not_created(tmp_path):
    with pytest.raises(StudyNotFoundError, match="no MLflow store"):
        collect_runs("table8", f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


def test_selection_keeps_one_run_per_row_and_seed(collected):
    spec, runs = collected
    sel = select_runs(spec, runs.trials)
    assert (sel.dataset, sel.code_version, sel.protocol) == ("something_v1", "v1", "1x1")
    keys = list(zip(sel.chosen["row"], sel.chosen["seed"], sel.chosen["status"], strict=True))
    assert keys == [
        ("only_soitr", 0, "FINISHED"),
        ("only_soitr", 1, "FINISHED"),
        ("only_soitr", 2, "FINISHED"),
        ("s_block", 0, "FINISHED"),
        ("s_block", 1, "FINISHED"),
        ("s_block", 2, "FINISHED"),
        ("l_block", 0, "FINISHED"),
        ("l_block", 1, "FINISHED"),
        ("incep_block", 0, "FINISHED"),
        ("incep_block", 1, "FAILED"),
        ("incep_block", 2, "FINISHED"),  # the retry, not the older failed run
        ("eab", 0, "FINISHED"),
        ("eab", 1, "FINISHED"),
        ("eab", 2, "FINISHED"),
        ("dead_block", 0, "FAILED"),
        ("dead_block", 1, "RUNNING"),
    ]
    assert (sel.chosen["protocol"] == "1x1").all() and (sel.chosen["dataset"] == "something_v1").all()
    assert sel.run("eab", 0)["top1"] == pytest.approx(51.7)  # not the newer 10x3 run (53.0)
    assert sel.run("l_block", 2) is None


def test_incompatible_runs_are_excluded_with_the_reason(collected):
    spec, runs = collected
    sel = select_runs(spec, runs.trials)
    ex = sel.excluded
    reasons = {(r, s): why for r, s, why in zip(ex["row"], ex["seed"], ex["reason"], strict=True)}
    assert reasons == {
        ("old_row", 0): "row 'old_row', which is not in the spec",
        ("eab", 0): "protocol 10x3 (this table: 1x1, clips x crops)",
        ("eab", 1): "dataset kinetics400 (this table: something_v1)",
        ("eab", 2): "code version v2 (this table: v1)",
    }
    lines = describe_exclusions(sel, {r.id: r.label for r in spec.rows})
    assert "1 run of protocol 10x3 (this table: 1x1, clips x crops): +EAB seed 0 (FINISHED)" in lines
    # The superseded failed attempt of incep_block seed 2 is neither chosen nor reported as excluded.
    superseded = runs.trials[(runs.trials["row"] == "incep_block") & (runs.trials["error"] == "worker died")]
    assert superseded["run_id"].iloc[0] not in set(sel.chosen["run_id"]) | set(sel.excluded["run_id"])


def test_pinned_dataset_selects_the_other_group(collected):
    spec, runs = collected
    sel = select_runs(spec, runs.trials, dataset="kinetics400")
    assert list(zip(sel.chosen["row"], sel.chosen["seed"], strict=True)) == [("eab", 1)]
    assert (sel.excluded["reason"] == "dataset something_v1 (this table: kinetics400)").sum() == 18


def _record(i, row="a", seed=0, status="FINISHED", dataset="d1", code="v1", protocol="1x1", key=None):
    return {
        "run_id": f"r{i}",
        "trial_key": key,
        "row": row,
        "seed": seed,
        "status": status,
        "dataset": dataset,
        "code_version": code,
        "protocol": protocol,
        "start_time": 1_000 * i,
        "top1": 50.0,
    }


def test_group_with_most_finished_runs_wins_even_if_older(fixture_store):
    _, spec = fixture_store
    records = [
        _record(1, "only_soitr", 0, code="v1"),
        _record(2, "only_soitr", 1, code="v1"),
        _record(3, "only_soitr", 2, code="v2"),  # newer, but a single finished run
        _record(4, "s_block", 0, status="FAILED", code="v2"),
    ]
    sel = select_runs(spec, runs_frame(records))
    assert sel.code_version == "v1"
    assert set(sel.chosen["run_id"]) == {"r1", "r2"}
    assert set(sel.excluded["run_id"]) == {"r3", "r4"}


def test_tie_goes_to_the_newest_group_and_failed_runs_give_way_to_finished(fixture_store):
    _, spec = fixture_store
    records = [
        _record(1, "only_soitr", 0, code="v1"),
        _record(2, "only_soitr", 1, status="FINISHED", code="v2"),
        _record(3, "only_soitr", 1, status="FAILED", code="v2"),  # newer than the finished run: ignored
    ]
    sel = select_runs(spec, runs_frame(records))
    assert sel.code_version == "v2"
    assert list(sel.chosen["run_id"]) == ["r2"]


def test_runs_of_other_data_are_never_compared_with_the_table(fixture_store):
    """A row trained again on changed annotations (another data fingerprint) is left out, named, not compared
    with rows trained on the old data; the group with the most finished runs wins, and runs older than the tag
    are one group."""
    _, spec = fixture_store
    records = [{**_record(i, row, seed), "data_fingerprint": "fp1"} for i, (row, seed) in enumerate(
        [("only_soitr", 0), ("only_soitr", 1), ("eab", 1)], start=1)]  # fmt: skip
    records += [{**_record(4, "eab", 0), "data_fingerprint": "fp2"}, {**_record(5, "s_block", 0)}]
    sel = select_runs(spec, runs_frame(records))
    assert set(sel.chosen["run_id"]) == {"r1", "r2", "r3"}
    assert dict(zip(sel.excluded["run_id"], sel.excluded["reason"], strict=True)) == {
        "r4": "data fingerprint fp2 (this table: fp1): trained or tested on other data (its annotations or videos "
        "changed)",
        "r5": "data fingerprint (untagged) (this table: fp1): trained or tested on other data (its annotations or "
        "videos changed)",
    }
    untagged = [{k: v for k, v in r.items() if k != "data_fingerprint"} for r in records]
    assert select_runs(spec, runs_frame(untagged)).excluded.empty
    pinned = select_runs(spec, runs_frame(records), data_fingerprint="fp2")  # --data-fingerprint fp2
    assert list(pinned.chosen["run_id"]) == ["r4"] and len(pinned.excluded) == 4


def test_the_runs_an_invocation_planned_decide_the_group(fixture_store):
    """``--rows eab`` after the data changed: the study command's table shows the planned row on the new data
    (its key's runs), and names the other rows' runs on the old data, though they are more."""
    _, spec = fixture_store
    old = [{**_record(i, row, seed), "data_fingerprint": "fp1", "trial_key": f"{row}{seed}"} for i, (row, seed)
           in enumerate([("only_soitr", 0), ("only_soitr", 1), ("s_block", 0), ("eab", 0)], start=1)]  # fmt: skip
    new = {**_record(5, "eab", 0), "data_fingerprint": "fp2", "trial_key": "eab0-new"}
    sel = select_runs(spec, runs_frame([*old, new]), keys={("eab", 0): "eab0-new"})
    assert list(sel.chosen["run_id"]) == ["r5"]
    reasons = dict(zip(sel.excluded["run_id"], sel.excluded["reason"], strict=True))
    assert reasons["r4"] == "a configuration this invocation did not plan (another trial key)"
    assert {reasons[r] for r in ("r1", "r2", "r3")} == {
        "data fingerprint fp1 (this table: fp2): trained or tested on other data (its annotations or videos changed)"
    }
    assert set(select_runs(spec, runs_frame([*old, new])).chosen["run_id"]) == {"r1", "r2", "r3", "r4"}
    failed = {**new, "status": "FAILED"}  # the planned run failed: the finished runs decide, as without keys
    sel = select_runs(spec, runs_frame([*old, failed]), keys={("eab", 0): "eab0-new"})
    assert set(sel.chosen["run_id"]) == {"r1", "r2", "r3"}


def test_runs_without_tags_are_excluded_and_called_untagged(fixture_store):
    _, spec = fixture_store
    records = [_record(1, "only_soitr", 0), _record(2, "only_soitr", 1), _record(3, "s_block", 0, dataset=None)]
    records.append({**_record(4, "s_block", 1), "protocol": None})
    sel = select_runs(spec, runs_frame(records))
    assert list(sel.excluded["reason"]) == [
        "dataset (untagged) (this table: d1)",
        "protocol (untagged) (this table: 1x1, clips x crops)",
    ]


def test_no_runs_gives_an_empty_selection(fixture_store):
    _, spec = fixture_store
    sel = select_runs(spec, runs_frame([]))
    assert sel.chosen.empty and sel.excluded.empty and sel.dataset is None
    assert isinstance(sel.chosen, pd.DataFrame)


def test_duplicate_finished_runs_of_a_row_and_seed_are_listed(fixture_store):
    _, spec = fixture_store
    records = [
        _record(1, "eab", 0),
        _record(2, "only_soitr", 0),
        _record(3, "eab", 0),  # a second FINISHED run of eab seed 0: chosen, the older one is a duplicate
        _record(4, "eab", 0, status="FAILED"),  # newer but failed: neither chosen nor a duplicate, named
        _record(5, "eab", 0, protocol="10x3"),  # excluded for its protocol: not a duplicate either
        _record(6, "eab", 1),
    ]
    sel = select_runs(spec, runs_frame(records))
    assert sel.run("eab", 0)["run_id"] == "r3"
    assert sel.duplicates == (Duplicate("eab", 0, "r3", ("r1",)),)
    keyed = [{**r, "trial_key": "k_lr" if r["run_id"] == "r3" else "k"} for r in records]
    (dup,) = select_runs(spec, runs_frame(keyed)).duplicates
    assert dup == Duplicate("eab", 0, "r3", ("r1",), configurations=2)
    (line,) = describe_duplicates(select_runs(spec, runs_frame(keyed)), {r.id: r.label for r in spec.rows})
    assert line.endswith(
        "also r1 (2 configurations: their trial keys differ, e.g. a command-line override; "
        "the table the study's own command prints, python -m runners.run STUDY, shows the spec's)"
    )
    assert dict(zip(sel.excluded["run_id"], sel.excluded["reason"], strict=True)) == {
        "r4": "a newer attempt that has not FINISHED (the table shows the older FINISHED run)",  # a failed --rerun
        "r5": "protocol 10x3 (this table: 1x1, clips x crops)",
    }
    lines = describe_duplicates(sel, {r.id: r.label for r in spec.rows})
    assert lines == ["2 FINISHED runs of +EAB seed 0: the newest (run r3) is shown; also r1"]


def test_planned_keys_fill_each_cell_with_that_configuration_only(fixture_store):
    """The driver's report: a newer run of another configuration (a command-line override) of a planned
    (row, seed) is left out, named; without keys the newest run is shown; a (row, seed) not planned takes its
    newest run either way."""
    _, spec = fixture_store
    records = [
        _record(1, "eab", 0, key="k_eab"),
        _record(2, "eab", 0, key="k_eab_lr"),  # newer, another configuration
        _record(3, "only_soitr", 0, key="k_lr"),  # the only run of a planned cell: another configuration
        _record(4, "eab", 1, key="k_old"),  # not planned here (--rows, --seeds)
        _record(5, "eab", 1, key="k_new"),
    ]
    keys = {("eab", 0): "k_eab", ("only_soitr", 0): "k_soitr"}
    sel = select_runs(spec, runs_frame(records), keys=keys)
    assert sel.run("eab", 0)["run_id"] == "r1" and sel.run("only_soitr", 0) is None
    assert sel.run("eab", 1)["run_id"] == "r5"
    assert list(sel.excluded["run_id"]) == ["r2", "r3"] and sel.duplicates == (Duplicate("eab", 1, "r5", ("r4",), 2),)
    (line,) = describe_exclusions(sel, {r.id: r.label for r in spec.rows})
    assert line.startswith("2 runs of a configuration this invocation did not plan (another trial key): +EAB seed 0")
    unkeyed = select_runs(spec, runs_frame(records))
    assert unkeyed.run("eab", 0)["run_id"] == "r2" and unkeyed.run("only_soitr", 0)["run_id"] == "r3"


def test_no_duplicates_when_each_row_and_seed_finished_once(collected):
    spec, runs = collected
    sel = select_runs(spec, runs.trials)  # incep_block seed 2: a FAILED then a FINISHED run, no duplicate
    assert sel.duplicates == ()
    assert describe_duplicates(sel, {r.id: r.label for r in spec.rows}) == []


def test_runs_that_scored_different_numbers_of_test_videos_are_named(fixture_store):
    """A bad test file is skipped: the runs' top-1 then have different denominators, which the note says."""
    _, spec = fixture_store
    labels = {r.id: r.label for r in spec.rows}
    records = [
        {**_record(i, row, seed), "test_videos": 120}
        for i, (row, seed) in enumerate([("only_soitr", 0), ("only_soitr", 1), ("eab", 0), ("eab", 1)])
    ]
    assert describe_test_videos(select_runs(spec, runs_frame(records)), labels) == []
    records[3]["test_videos"] = 119
    records.append({**_record(9, "s_block", 0, status="FAILED"), "test_videos": 3})  # not a result: ignored
    records.append(_record(10, "s_block", 1))  # older than test_videos: says nothing
    lines = describe_test_videos(select_runs(spec, runs_frame(records)), labels)
    assert lines == ["Test videos scored: 120 by 3 runs; 119 by +EAB seed 1 (a bad file is skipped, not counted wrong)"]


def test_an_evaluation_of_a_checkpoint_its_training_replaced_is_left_out_named():
    """``--rerun --rows base`` trained base again; the evaluation row's run tested the old checkpoint and its new
    evaluation has not finished (it waits, or failed): the table shows no number of the old checkpoint. An
    evaluation of the current checkpoint is shown; a run older than the checkpoint tag is judged by its start; an
    evaluation whose training has no FINISHED run, or of another configuration, is left out too."""
    from study.spec import parse_spec

    rows = [{"id": "base", "label": "Base"}, {"id": "x2", "label": "Base x2", "evaluate": "base",
            "protocol": {"clips": 2, "crops": 1}}]  # fmt: skip
    spec = parse_spec({"name": "s", "title": "t", "seeds": [0, 1, 2], "protocol": {"clips": 1, "crops": 1},
                       "columns": ["top1"], "rows": rows})  # fmt: skip
    labels = {r.id: r.label for r in spec.rows}

    def run(i, row, seed, protocol="1x1", **tags):
        return {**_record(i, row, seed, protocol=protocol), "end_time": 1_000 * i + 500, **tags}

    records = [
        run(1, "base", 0, checkpoint="/runs/base0/last.pt", trial_key="k"),
        run(2, "base", 1, checkpoint="/runs/base1/last.pt", trial_key="k"),
        run(3, "x2", 0, "2x1", evaluated_checkpoint="/runs/base0/last.pt", evaluates="k"),
        run(4, "x2", 1, "2x1", evaluated_checkpoint="/runs/base1/last.pt", evaluates="k"),
        run(5, "base", 0, checkpoint="/runs/base0-rerun1/last.pt", trial_key="k"),  # trained again since
        {**run(6, "x2", 0, "2x1", evaluated_checkpoint="/runs/base0-rerun1/last.pt"), "status": "FAILED"},
        {**run(7, "base", 2), "status": "FAILED"},  # seed 2: its training has no FINISHED run
        run(8, "x2", 2, "2x1", evaluated_checkpoint="/runs/base2/last.pt", evaluates="k"),
        {**run(9, "x2", 2, "2x1", evaluated_checkpoint="/runs/base2/last.pt", evaluates="k"), "status": "FAILED"},
    ]
    records[0]["superseded_by"] = "r5"
    sel = select_runs(spec, runs_frame(records))
    assert sel.run("base", 0)["run_id"] == "r5" and sel.run("x2", 1)["run_id"] == "r4"
    assert sel.run("x2", 0)["run_id"] == "r6"  # the new evaluation, failed: the cell says so
    assert sel.run("x2", 2)["run_id"] == "r9" and list(sel.excluded["run_id"]) == ["r3", "r8"]  # failed, shown
    lines = describe_exclusions(sel, labels)
    assert lines[0].startswith("1 run of an evaluation of another checkpoint of row 'base'") and "x2 seed 0" in lines[0]
    assert lines[1].startswith("1 run of an evaluation of row 'base', which has no FINISHED run in this table")

    untagged = [{**r, "evaluated_checkpoint": None} for r in records[:6]]  # runs from before the tag: by time
    untagged[2]["start_time"] = untagged[4]["end_time"]  # started as the training ended: of that training
    sel = select_runs(spec, runs_frame(untagged))
    assert sel.run("x2", 0)["run_id"] == "r3" and sel.run("x2", 1)["run_id"] == "r4"
    untagged[2]["start_time"] -= 1
    assert select_runs(spec, runs_frame(untagged)).run("x2", 0)["run_id"] == "r6"

    same_folder = [dict(r) for r in records[:4]]  # base seed 1 trained again in its folder (run, folder deleted)
    same_folder[1]["end_time"] = same_folder[3]["end_time"] + 1  # ... it ended after x2 seed 1 ended
    sel = select_runs(spec, runs_frame(same_folder))
    assert sel.run("x2", 1) is None and "r4" in set(sel.excluded["run_id"])
    same_folder[1]["end_time"] = same_folder[3]["end_time"] - 1  # a resumed evaluation keeps its first start
    assert select_runs(spec, runs_frame(same_folder)).run("x2", 1)["run_id"] == "r4"
    same_folder[1]["end_time"] = same_folder[3]["end_time"] + 1
    same_folder[3]["reused_from"] = "source-run"  # a copy's times say nothing: the path decides
    assert select_runs(spec, runs_frame(same_folder)).run("x2", 1)["run_id"] == "r4"

    configurations = [{**r, "trial_key": "k2"} if r["run_id"] == "r5" else r for r in records[:6]]  # lr=0.1 ...
    sel = select_runs(spec, runs_frame(configurations))
    line = describe_exclusions(sel, labels)[0]
    assert line.startswith("1 run of an evaluation of another configuration of row 'base' (another trial key)")


def test_an_ensemble_of_member_runs_the_table_no_longer_shows_is_left_out_named():
    """A member of the ensemble was trained again (``--rerun``) and the new average failed: the table shows the
    members' new runs, and no average of the old ones. An average of the runs shown stays."""
    from study.spec import parse_spec

    rows = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "en", "label": "En", "ensemble": ["a", "b"]}]
    spec = parse_spec({"name": "s", "title": "t", "seeds": [0, 1], "protocol": {"clips": 1, "crops": 1},
                       "columns": ["top1"], "rows": rows})  # fmt: skip
    records = [
        _record(1, "a", 0), _record(2, "b", 0), {**_record(3, "en", 0), "ensemble_of": "r1,r2"},
        _record(4, "a", 1), _record(5, "b", 1), {**_record(6, "en", 1), "ensemble_of": "r4,r5"},
        {**_record(7, "a", 0), "trial_key": "k"},  # a trained again since
    ]  # fmt: skip
    records[0]["superseded_by"] = "r7"
    sel = select_runs(spec, runs_frame(records))
    assert sel.run("a", 0)["run_id"] == "r7" and sel.run("en", 1)["run_id"] == "r6"
    assert sel.run("en", 0) is None and list(sel.excluded["run_id"]) == ["r3"]
    (line,) = describe_exclusions(sel, {r.id: r.label for r in spec.rows})
    assert line.startswith("1 run of an average of other runs of its members than those in this table")
    again = [*records, {**_record(8, "en", 0), "ensemble_of": "r7,r2"}]  # averaged again: the new one is shown
    assert select_runs(spec, runs_frame(again)).run("en", 0)["run_id"] == "r8"

    grown = parse_spec({**spec.raw, "rows": [*rows[:2], {"id": "c", "label": "C"},
                                             {"id": "en", "label": "En", "ensemble": ["a", "b", "c"]}]})  # fmt: skip
    added = [*records[3:6], {**_record(9, "c", 1), "status": "RUNNING"}]  # c added to the row, still training
    sel = select_runs(grown, runs_frame(added))
    assert sel.run("en", 1) is None and list(sel.excluded["run_id"]) == ["r6"]
    (line,) = describe_exclusions(sel, {r.id: r.label for r in grown.rows})
    assert line.startswith("1 run of an average of members of which some have no FINISHED run in this table")

    override = [*records[3:6], {**_record(10, "a", 1), "trial_key": "k_lr"}]  # --rows a trainer.lr=0.1, after
    for r in override[:3]:
        r["trial_key"] = r["trial_key"] or f"k_{r['row']}"
    (line,) = describe_exclusions(select_runs(spec, runs_frame(override)), {r.id: r.label for r in spec.rows})
    assert line.startswith("1 run of an average of its members' runs of another configuration (another trial key)")


def test_a_run_of_a_seed_the_table_leaves_out_is_named_with_the_tables_seeds(collected):
    """A table of the seeds an invocation chose (``--seeds 2``): the other seeds' runs are named against those."""
    import dataclasses

    spec, runs = collected
    sel = select_runs(dataclasses.replace(spec, seeds=(2,)), runs.trials)
    reasons = set(sel.excluded["reason"])
    assert "a seed not among this table's seeds [2]" in reasons and not any("spec's seeds" in r for r in reasons)
