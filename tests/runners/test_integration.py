"""The study runner end to end with a real local Ray and a real MLflow store (sqlite and a server)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from ean.train import read_starts
from runners.lease import LeaseHeld, StudyLease
from runners.run import main
from tests.runners.conftest import cli_args, run_subprocess, tiny_spec, trial_runs, write_yaml

pytestmark = pytest.mark.slow

ROW_BASE = {"id": "base", "label": "Baseline", "overrides": ["block=none", "regions=none"]}
ROW_EAB = {"id": "eab", "label": "+EAB", "overrides": ["block=eab", "regions=none"]}


def by_row(runs) -> dict[str, list]:
    out: dict[str, list] = {}
    for run in runs:
        out.setdefault(run.data.tags["ean.row"], []).append(run)
    return out


def test_cache_hit_added_row_and_rerun(study_dir, capsys):
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE]))
    assert main(cli_args(study_dir, spec, "--no-report")) == 0
    runs = trial_runs(study_dir)
    assert [r.info.status for r in runs] == ["FINISHED"]
    first = runs[0]
    assert first.info.run_name == "tiny/base/seed0"
    assert {"top1", "top5", "params", "flops", "train_loss", "epoch_time_s"} <= set(first.data.metrics)
    assert first.data.params["model.block"] == "none"
    for tag in ("ean.trial_key", "ean.git_commit", "ean.code_digest", "ean.data_fingerprint", "mlflow.parentRunId"):
        assert first.data.tags.get(tag)
    parent = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}").get_run(first.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["ean.report_folder"] == "outputs/reports/tiny"  # where its figures go, too

    capsys.readouterr()
    assert main(cli_args(study_dir, spec, "--no-report")) == 0  # cached: nothing runs
    assert "the 1 trial already FINISHED" in capsys.readouterr().out
    assert len(trial_runs(study_dir)) == 1

    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE, ROW_EAB]))
    assert main(cli_args(study_dir, spec)) == 0  # only the new row runs; the table is printed
    rows = by_row(trial_runs(study_dir))
    assert [r.info.run_id for r in rows["base"]] == [first.info.run_id]
    assert [r.info.status for r in rows["eab"]] == ["FINISHED"]
    assert "+EAB" in capsys.readouterr().out

    assert main(cli_args(study_dir, spec, "--rerun", "--rows", "base", "--no-report")) == 0
    base = sorted(by_row(trial_runs(study_dir))["base"], key=lambda r: r.info.start_time)
    assert [r.info.status for r in base] == ["FINISHED", "FINISHED"]  # the old run stays FINISHED, superseded
    assert base[0].data.tags.get("ean.superseded_by") == base[1].info.run_id
    old_dir, new_dir = (Path(r.data.tags["ean.workdir"]) for r in base)
    assert new_dir != old_dir and [s["start_epoch"] for s in read_starts(new_dir)] == [1]  # trained afresh
    assert base[1].data.tags["ean.checkpoint"].startswith(str(new_dir))
    experiment = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}").get_experiment_by_name("tiny")
    reruns = {k: v for k, v in experiment.tags.items() if k.startswith("ean.rerun.")}
    assert len(reruns) == 1 and set(reruns.values()) == {""}, (
        f"the rerun ended, every trial it planned finished: {reruns}"
    )


def test_ddp_trial_with_two_workers_through_ray_train(study_dir):
    row = {"id": "ddp", "label": "DDP", "overrides": ["block=none", "regions=none", "resources=ddp2"]}
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([row]))
    result = run_subprocess(study_dir, cli_args(study_dir, spec, "--no-report"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = trial_runs(study_dir)
    assert run.info.status == "FINISHED" and "top1" in run.data.metrics
    assert run.data.params["resources.workers"] == "2"
    for epoch in (1, 2):  # every epoch reached the driver as rank 0 wrote it (Tune reports, not the final backfill)
        assert f"tiny/ddp/seed0: epoch {epoch}/2 train_loss" in result.stdout, result.stdout[-3000:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tracking_server_on_loopback(study_dir):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{study_dir / 'server.db'}", "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        uri = f"http://127.0.0.1:{port}"
        client = MlflowClient(uri)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                client.search_experiments()
                break
            except Exception:
                time.sleep(1)
        spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE]))
        args = [str(spec), "--mlflow-uri", uri, "--storage", str(study_dir / "runs")]
        assert main(args) == 0
        exp = client.get_experiment_by_name("tiny")
        runs = client.search_runs([exp.experiment_id], "tags.`ean.kind` = 'trial'")
        assert [r.info.status for r in runs] == ["FINISHED"]
        artifacts = [a.path for a in client.list_artifacts(runs[0].info.run_id)]
        assert "config.yaml" in artifacts and "scores" in artifacts
        # the study's lease on a server: a lock experiment, created once through the REST API, released
        (released,) = client.search_experiments(view_type=ViewType.ALL, filter_string="name LIKE 'ean-lease/%'")
        assert released.lifecycle_stage == "deleted", "the driver released its lock"
        first = StudyLease(uri, exp.experiment_id, "tiny", "first")
        first.acquire()
        try:
            with pytest.raises(LeaseHeld, match="first"):
                StudyLease(uri, exp.experiment_id, "tiny", "second").acquire()
        finally:
            first.release()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ensemble_row_averages_the_member_scores(study_dir, capsys):
    rows = [
        {"id": "a", "label": "A", "overrides": ["block=none", "regions=none"]},
        {"id": "b", "label": "B", "overrides": ["block=none", "regions=none", "model.num_segments=2"]},
        {"id": "en", "label": "En", "ensemble": ["a", "b"]},
    ]
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec(rows))
    assert main(cli_args(study_dir, spec)) == 0
    table = capsys.readouterr().out
    en_line = next(line for line in table.splitlines() if line.startswith("| En "))
    assert "missing" not in en_line and "an average of other runs" not in table  # the table shows the average
    runs = by_row(trial_runs(study_dir))
    (en,) = runs["en"]
    assert en.info.status == "FINISHED"
    a, b = runs["a"][0], runs["b"][0]
    assert en.data.metrics["flops"] == a.data.metrics["flops"] + b.data.metrics["flops"]
    assert 0 <= en.data.metrics["top1"] <= 100
    assert set(en.data.tags["ean.ensemble_of"].split(",")) == {a.info.run_id, b.info.run_id}
    # MLflow's conventions: system tags on every run, the data as run inputs, the parent with spec, plan, report
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    (parent,) = client.search_runs([en.info.experiment_id], "tags.`ean.kind` = 'study'")
    for run in (a, b, en, parent):
        assert run.data.tags["mlflow.source.type"] == "LOCAL" and run.data.tags["mlflow.user"]
        assert run.data.tags["mlflow.source.git.commit"] and run.data.tags["mlflow.source.name"]
    inputs = {
        r.data.tags["ean.row"]: {
            i.dataset.name: i.dataset.digest for i in client.get_run(r.info.run_id).inputs.dataset_inputs
        }
        for r in (a, en)
    }
    fingerprint = a.data.tags["ean.data_fingerprint"]
    assert inputs["a"] == {"synthetic/train": fingerprint, "synthetic/val": fingerprint}
    assert inputs["en"] == {"synthetic/val": fingerprint}
    top = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"spec.yaml", "plan.json", "report"} <= top
    report = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/tiny.md", "report/tiny.tex", "report/tiny.csv", "report/figures"} <= report
    note = client.get_run(parent.info.run_id).data.tags["mlflow.note.content"]
    table = (study_dir / "outputs" / "reports" / "tiny" / "tiny.md").read_text()
    assert "| En " in note and note.split("\n\n")[1] == table.split("\n\n")[1]  # the table itself, as written
    assert main(cli_args(study_dir, spec, "--no-report")) == 0  # cached: no second ensemble run, no parent
    assert len(by_row(trial_runs(study_dir))["en"]) == 1
    assert len(client.search_runs([en.info.experiment_id], "tags.`ean.kind` = 'study'")) == 1


def test_a_study_reuses_the_trials_another_study_trained(study_dir, capsys):
    """Study B after study A in one store: the cells with A's keys are not trained again; B's table, ensembles
    and figures are complete, and each reused run points at A's run."""
    from reports.make import make_report

    row_en = {"id": "en", "label": "En", "ensemble": ["base", "eab"]}
    first = write_yaml(study_dir / "first.yaml", tiny_spec([ROW_BASE, ROW_EAB, row_en], name="first"))
    assert main(cli_args(study_dir, first, "--no-report")) == 0
    # B names A's baseline otherwise (an option its block never reads) and adds a row of its own.
    rows = [
        {"id": "baseline", "label": "Baseline", "overrides": ["block=none", "regions=none", "model.fusion=static"]},
        {"id": "incep", "label": "Incep", "overrides": ["block=incep_block", "regions=none"]},
        {"id": "en", "label": "En", "ensemble": ["baseline", "incep"]},
    ]
    second = write_yaml(study_dir / "second.yaml", tiny_spec(rows, name="second"))
    capsys.readouterr()
    assert main(cli_args(study_dir, second, "--dry-run")) == 0
    plan = capsys.readouterr().out
    assert "second/baseline/seed0" in plan and "reused from first/base/seed0" in plan
    assert plan.count("reused from") == 1  # incep is new here

    assert main(cli_args(study_dir, second, "--no-report")) == 0
    out = capsys.readouterr().out
    assert "1 reused from other studies" in out
    runs = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir, "second")}
    source = {r.data.tags["ean.row"]: r for r in trial_runs(study_dir, "first")}["base"]
    reused = runs["baseline"]
    assert reused.info.status == "FINISHED" and reused.data.tags["ean.reused_from"] == source.info.run_id
    assert reused.data.tags["ean.trial_key"] == source.data.tags["ean.trial_key"]
    assert reused.data.tags["ean.checkpoint"] == source.data.tags["ean.checkpoint"]
    assert reused.data.metrics["top1"] == source.data.metrics["top1"]
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    history = [m.step for m in client.get_metric_history(reused.info.run_id, "train_loss")]
    assert history == [m.step for m in client.get_metric_history(source.info.run_id, "train_loss")] == [1, 2]
    trained_here = [r for r in trial_runs(study_dir, "second") if "ean.reused_from" not in r.data.tags]
    assert sorted(r.data.tags["ean.row"] for r in trained_here) == ["en", "incep"]  # one training, one ensemble

    report = make_report(second, tracking_uri=f"sqlite:///{study_dir / 'mlflow.db'}", out=study_dir / "report")
    assert "MISSING" not in report.markdown.upper() and not report.warnings
    for label in ("Baseline", "Incep", "En"):
        assert label in report.markdown
    assert any(p.suffix == ".pdf" for p in report.files)

    assert main(cli_args(study_dir, second, "--no-report")) == 0  # a third run: all cached, nothing reused again
    assert len(trial_runs(study_dir, "second")) == 3


def test_an_error_a_retry_would_meet_again_fails_its_trial_at_once_naming_its_cause(study_dir, capsys):
    """Every training video corrupt and ``max_bad_fraction=0``: the trial's DataError (a ValueError) would come
    again on a retry, so it is not retried (one start); its run FAILED names the error by its own first line,
    not by the last line of its message; its traceback is kept in the trial's folder."""
    from ean.data import build_dataset
    from runners.plan import build_plan
    from study.spec import parse_spec

    extra = [f"data.root={study_dir / 'syn'}", "data.max_bad_fraction=0.0"]
    spec_data = tiny_spec([ROW_BASE])
    (trial,) = build_plan(parse_spec(spec_data), [], extra, [0], study_dir)
    build_dataset({**trial.config["data"], "decode_timeout_s": 0}, "train")  # generated as the trial would
    for video in (study_dir / "syn" / "videos").glob("*.mp4"):
        video.write_bytes(b"not a video")
    spec = write_yaml(study_dir / "tiny.yaml", spec_data)
    assert main(cli_args(study_dir, spec, "--no-report", *extra)) == 1
    out = capsys.readouterr().out
    (run,) = trial_runs(study_dir)
    error = run.data.tags["ean.error"]
    assert run.info.status == "FAILED" and error.startswith("DataError: ") and "files are bad" in error
    assert "retrying" not in out and "not retried" in error
    (workdir,) = [p for p in (study_dir / "runs" / "tiny").iterdir() if p.is_dir()]
    assert [s["start_epoch"] for s in read_starts(workdir)] == [1]
    assert "Traceback" in (workdir / "error.txt").read_text()


def test_a_run_of_other_seeds_writes_its_table_beside_the_specs(study_dir, capsys):
    """The spec's two seeds trained, then a run of seed 0 alone (cached, nothing trains): its table goes to
    ``outputs/reports/tiny-seeds-0``, and the table of the spec's seeds stays as it was."""
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE], seeds=(0, 1)))
    assert main(cli_args(study_dir, spec)) == 0
    reports = study_dir / "outputs" / "reports"
    full = (reports / "tiny" / "tiny.md").read_text()
    assert re.search(r"\|\s+2/2\s+\|", full)
    capsys.readouterr()
    assert main(cli_args(study_dir, spec, "--seeds", "0")) == 0
    assert "the 1 trial already FINISHED" in capsys.readouterr().out
    subset = (reports / "tiny-seeds-0" / "tiny.md").read_text()
    assert re.search(r"\|\s+1/1\s+\|", subset) and "not the spec as written: --seeds 0;" in subset
    assert (reports / "tiny" / "tiny.md").read_text() == full and "not the spec as written" not in full


def test_a_run_of_some_rows_shows_no_other_configurations_run_in_the_rows_it_left_out(study_dir, capsys):
    """+EAB trained with a command-line override, then the spec as written run for its baseline alone
    (``--rows base``): the spec's table shows no number for +EAB (it has no run of the spec's configuration)
    and names the override's run as left out, instead of comparing it with the baseline."""
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE, ROW_EAB]))
    assert main(cli_args(study_dir, spec, "--rows", "eab", "--no-report", "trainer.max_steps_per_epoch=1")) == 0
    capsys.readouterr()
    assert main(cli_args(study_dir, spec, "--rows", "base")) == 0
    table = (study_dir / "outputs" / "reports" / "tiny" / "tiny.md").read_text()
    eab = next(line for line in table.splitlines() if line.startswith("| +EAB"))
    assert "missing" in eab and "0/1" in eab, table
    assert "another trial key" in table and "+EAB seed 0" in table, table


def test_a_training_another_study_left_unfinished_resumes_from_its_checkpoint(study_dir, capsys):
    """Study A trained a key into its folder, and its driver stopped before the result reached the store (here: B
    uses a store of its own, which has no run of it): B, holding the key's claim, resumes from A's checkpoint
    instead of training from scratch (found by a review: the epochs A finished were trained again)."""
    first = write_yaml(study_dir / "first.yaml", tiny_spec([ROW_BASE], name="first"))
    assert main(cli_args(study_dir, first, "--no-report")) == 0
    (a_run,) = trial_runs(study_dir, "first")
    key = a_run.data.tags["ean.trial_key"]
    second = write_yaml(study_dir / "second.yaml", tiny_spec([ROW_BASE], name="second"))
    capsys.readouterr()
    args = [str(second), "--mlflow-uri", f"sqlite:///{study_dir / 'other.db'}", "--storage", str(study_dir / "runs")]
    assert main([*args, "--no-report"]) == 0
    out = capsys.readouterr().out
    assert f"second/base/seed0: resumes from {study_dir / 'runs' / 'first' / key}" in out
    starts = read_starts(study_dir / "runs" / "second" / key)
    assert [(s["start_epoch"], s["resumed"]) for s in starts] == [
        (3, True)
    ]  # both epochs were A's: nothing trained, only tested
    client = MlflowClient(f"sqlite:///{study_dir / 'other.db'}")
    (b_run,) = client.search_runs([client.get_experiment_by_name("second").experiment_id], "tags.`ean.kind` = 'trial'")
    assert b_run.info.status == "FINISHED" and b_run.data.metrics["top1"] == a_run.data.metrics["top1"]
    assert b_run.data.tags["ean.inherited_checkpoint"] == str(
        study_dir / "runs" / "first" / key / "checkpoints" / "last.pt"
    )


def test_a_rerun_trains_from_scratch_though_another_study_has_a_checkpoint_of_the_key(study_dir, capsys):
    """``--rerun`` in study B of a key study A finished: B trains it (a review found A's checkpoint copied)."""
    first = write_yaml(study_dir / "first.yaml", tiny_spec([ROW_BASE], name="first"))
    assert main(cli_args(study_dir, first, "--no-report")) == 0
    key = trial_runs(study_dir, "first")[0].data.tags["ean.trial_key"]
    second = write_yaml(study_dir / "second.yaml", tiny_spec([ROW_BASE], name="second"))
    capsys.readouterr()
    assert main(cli_args(study_dir, second, "--rerun", "--no-report")) == 0
    assert "resumes from" not in capsys.readouterr().out
    starts = read_starts(study_dir / "runs" / "second" / key)
    assert [(s["start_epoch"], s["resumed"]) for s in starts] == [(1, False)]
