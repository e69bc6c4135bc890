"""Evaluation rows: a finished training tested again under another protocol, never retrained."""

from __future__ import annotations

import pytest

from ean.train import read_starts
from ean.trial import protocol_key
from runners.plan import build_plan, evaluation_key
from runners.run import main
from study.spec import SpecError, parse_spec
from tests.runners.conftest import cli_args, tiny_spec, trial_runs, write_yaml

BASE = {"id": "base", "label": "Base", "overrides": ["block=none", "regions=none"]}
TWO_CLIPS = {"id": "base_2clips", "label": "Base x2", "evaluate": "base", "protocol": {"clips": 2, "crops": 1}}
THREE_CLIPS = {"id": "base_3clips", "label": "Base x3", "evaluate": "base", "protocol": {"clips": 3, "crops": 1}}


def test_an_evaluation_row_plans_the_training_config_with_its_protocol(tmp_path):
    spec = parse_spec(tiny_spec([BASE, TWO_CLIPS], seeds=(0, 1)))
    trials = build_plan(spec, [], [], [0, 1], tmp_path)
    base = {t.seed: t for t in trials if t.row.id == "base"}
    for trial in (t for t in trials if t.row.id == "base_2clips"):
        training = base[trial.seed]
        assert trial.evaluates == training.key and trial.key == evaluation_key(training.key, protocol_key("2x1"))
        assert trial.recipe["protocol"] == "2x1" and trial.config["data"]["test_clips"] == 2
        assert {**trial.config["data"], "test_clips": 1} == training.config["data"]
        assert trial.config["model"] == training.config["model"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**TWO_CLIPS, "evaluate": "nope"}, "evaluate names 'nope', not an earlier trained row. Valid: base"),
        ({k: v for k, v in TWO_CLIPS.items() if k != "protocol"}, "give both 'evaluate' and 'protocol'"),
        ({**TWO_CLIPS, "overrides": ["block=eab"]}, "takes no overrides"),
        ({**TWO_CLIPS, "protocol": {"clips": 1, "crops": 1}}, "under the spec's own protocol 1x1, which that row's"),
    ],
)
def test_a_bad_evaluation_row_is_refused(row, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(tiny_spec([BASE, row]))


@pytest.mark.slow
def test_evaluations_run_from_the_finished_checkpoint_and_a_new_protocol_never_retrains(study_dir, capsys):
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([BASE, TWO_CLIPS]))
    assert main(cli_args(study_dir, spec, "--no-report")) == 0
    runs = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir)}
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    training, evaluation = runs["base"], runs["base_2clips"]
    assert evaluation.data.tags["ean.protocol"] == "2x1" and training.data.tags["ean.protocol"] == "1x1"
    assert evaluation.data.tags["ean.evaluates"] == training.data.tags["ean.trial_key"]
    epochs = int(training.data.params["trainer.epochs"])
    (start,) = read_starts(evaluation.data.tags["ean.workdir"])
    assert start["resumed"] and start["start_epoch"] == epochs + 1  # tested only: nothing trained
    assert "top1" in evaluation.data.metrics

    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([BASE, TWO_CLIPS, THREE_CLIPS]))
    capsys.readouterr()
    assert main(cli_args(study_dir, spec)) == 0  # the table is made, with the three rows
    out = capsys.readouterr().out
    assert "1 trial(s) to run, 2 cached" in out and "Base x3" in out
    runs = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir)}
    assert len(trial_runs(study_dir)) == 3 and runs["base_3clips"].data.tags["ean.protocol"] == "3x1"
    assert [s["start_epoch"] for s in read_starts(training.data.tags["ean.workdir"])] == [1]  # trained once
    for row in ("base_2clips", "base_3clips"):
        assert runs[row].data.tags["ean.evaluated_checkpoint"] == training.data.tags["ean.checkpoint"]

    # base trained again: --rows base brings the rows that evaluate it, which test the new checkpoint
    assert main(cli_args(study_dir, spec, "--rerun", "--rows", "base", "--no-report")) == 0
    assert "3 trial(s) to run, 0 cached" in capsys.readouterr().out
    current = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir) if "ean.superseded_by" not in r.data.tags}
    checkpoint = current["base"].data.tags["ean.checkpoint"]
    assert checkpoint != training.data.tags["ean.checkpoint"]
    for row in ("base_2clips", "base_3clips"):
        assert current[row].data.tags["ean.evaluated_checkpoint"] == checkpoint
    assert len(trial_runs(study_dir)) == 6


@pytest.mark.slow
def test_a_study_of_two_datasets_trains_each_row_once_per_dataset_and_ensembles_each(study_dir, capsys):
    """Table 1's shape: every trained row once per dataset column, the ensemble per column, one table with a group
    per dataset; run again, everything is cached."""
    data = dict(tiny_spec([]))
    tiny = [o for o in data.pop("overrides") if not o.startswith("data")]
    data.update(
        overrides=["trainer=smoke"],
        datasets={"something_v1": {}, "something_v2": {"smoke": ["data.seed=1", f"data.root={study_dir}/other"]}},
        profiles={"smoke": ["data=synthetic", "data.num_videos=24", "data.size=64", *tiny]},
        rows=[BASE, {"id": "eab", "label": "EAB", "overrides": ["regions=none"]}, EN],
    )
    spec = write_yaml(study_dir / "two.yaml", data)
    assert main(cli_args(study_dir, spec, "--profile", "smoke")) == 0
    out = capsys.readouterr().out
    runs = trial_runs(study_dir)
    cells = sorted((r.data.tags["ean.row"], r.data.tags["ean.column"]) for r in runs)
    assert cells == [(row, c) for row in ("base", "eab", "en") for c in ("something_v1", "something_v2")]
    assert {r.info.status for r in runs} == {"FINISHED"}
    fingerprints = {r.data.tags["ean.column"]: r.data.tags["ean.data_fingerprint"] for r in runs}
    assert fingerprints["something_v1"] != fingerprints["something_v2"]  # other synthetic videos in V2's column
    assert "tiny/en/something_v2/seed0" in {r.info.run_name for r in runs}
    column_of = {r.info.run_id: r.data.tags["ean.column"] for r in runs}
    for en in (r for r in runs if r.data.tags["ean.row"] == "en"):  # averages the members of its own column
        members = en.data.tags["ean.ensemble_of"].split(",")
        assert [column_of[m] for m in members] == [en.data.tags["ean.column"]] * 2
    assert "Something V1 (runs on Synthetic) Top1 (%)" in out and "Something V2 (runs on Synthetic) Seeds" in out

    assert main(cli_args(study_dir, spec, "--profile", "smoke", "--no-report")) == 0
    assert "all 4 trials already FINISHED" in capsys.readouterr().out
    assert len(trial_runs(study_dir)) == 6


EN = {"id": "en", "label": "En", "ensemble": ["base", "eab"]}


@pytest.mark.slow
def test_a_failed_preparation_is_named_the_evaluations_wait_and_the_next_invocation_applies_every_write(
    study_dir, capsys, monkeypatch
):
    """The invocation's parent run cannot be made (here: the artifact store refuses): the training still runs,
    the driver names the cause and exits 3 (MLflow), the evaluation rows wait, and the same command then records
    the finished training from the journal, trains nothing again and runs the evaluation."""
    from runners.session import EXIT_STORE_DOWN, StudySession

    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([BASE, TWO_CLIPS]))
    prepare = StudySession.prepare_runs

    def refused(self, todo=None):
        raise PermissionError("cannot write the artifact location /artifacts/x")

    monkeypatch.setattr(StudySession, "prepare_runs", refused)
    assert main(cli_args(study_dir, spec, "--no-report")) == EXIT_STORE_DOWN
    out, err = capsys.readouterr()
    assert "evaluation rows not run" in out and "MLflow writes stopped: PermissionError" in err
    monkeypatch.setattr(StudySession, "prepare_runs", prepare)
    assert main(cli_args(study_dir, spec, "--no-report")) == 0
    out = capsys.readouterr().out
    assert "MLflow write(s) an earlier invocation left" in out and "1 trial(s) to run, 1 cached" in out
    runs = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir)}
    assert {row: r.info.status for row, r in runs.items()} == {"base": "FINISHED", "base_2clips": "FINISHED"}
    assert [s["start_epoch"] for s in read_starts(runs["base"].data.tags["ean.workdir"])] == [1]  # trained once
