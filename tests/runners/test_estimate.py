"""--estimate: a study's cost from a timed step, the recipe and the data's size; cached trials are free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ean.data import build_dataset
from ean.data.identity import split_size
from runners.cache import DiskCache
from runners.estimate import estimate, evaluated_views, format_costs, step_code_signature
from runners.plan import TrialState, build_plan
from runners.run import main
from study.spec import parse_spec
from tests.runners.conftest import REPO, tiny_spec

BASE = {"id": "base", "label": "Base", "overrides": ["block=none", "regions=none"]}


def test_the_synthetic_split_sizes_are_known_without_generating_and_match_the_files(tmp_path):
    cfg = {"dataset": "synthetic", "root": str(tmp_path / "syn"), "num_videos": 23, "num_classes": 4, "size": 32}
    sizes = {split: split_size(cfg, split) for split in ("train", "val")}
    assert not (tmp_path / "syn").exists()  # nothing generated to count
    assert sizes == {split: len(build_dataset({**cfg, "decode_timeout_s": 0}, split)) for split in sizes}


def test_an_absent_dataset_is_counted_by_its_official_size(tmp_path):
    assert split_size({"dataset": "something_v1", "root": str(tmp_path / "none")}, "train") == 86017


def test_the_cost_follows_the_recipe_and_cached_trials_are_free(tmp_path, monkeypatch):
    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: 2.0)
    spec = parse_spec(tiny_spec([BASE], seeds=(0, 1)))
    trials = build_plan(spec, [], ["trainer.max_steps_per_epoch=null", "trainer.epochs=3"], [0, 1], tmp_path)
    trials[1].state = TrialState.CACHED
    (cost,) = estimate(trials)
    data = trials[0].config["data"]
    per_epoch = split_size(data, "train") // trials[0].config["trainer"]["batch_size"]
    assert cost.trial is trials[0] and cost.steps == 3 * per_epoch
    assert cost.train_hours == pytest.approx(3 * per_epoch * 2.0 / 3600)
    # 3 validations of 1 view (1x1: no final test of its own), each val video a forward pass, a third of a
    # training step's time per clip (2 s for the batch's clips)
    batch, val = trials[0].config["trainer"]["batch_size"], split_size(data, "val")
    assert cost.eval_hours == pytest.approx(3 * val * (2.0 / batch) / 3 / 3600)
    assert cost.device_hours == pytest.approx(cost.train_hours + cost.eval_hours)
    text = format_costs([cost], trials, slots=1)
    assert "1 trial(s) to train (1 cached or reused: free)" in text
    assert text.splitlines()[1].split()[:3] == ["base", "1", "1"]  # the row: 1 to train, 1 free


def test_each_distinct_network_is_timed_once(tmp_path, monkeypatch):
    """Seeds of a row share their network: one timing; another row's network is timed on its own."""
    timed = []
    monkeypatch.setattr("runners.estimate._time_step", lambda config, *a: timed.append(config["model"]["block"]) or 1.0)
    other = {"id": "other", "label": "Other", "overrides": ["block=s_block", "regions=none"]}
    spec = parse_spec(tiny_spec([BASE, other], seeds=(0, 1)))
    costs = estimate(build_plan(spec, [], [], [0, 1], tmp_path), cache=DiskCache("step_seconds", tmp_path / "c"))
    assert len(costs) == 4 and sorted(timed) == ["none", "s_block"]


def test_a_row_whose_trials_are_all_cached_is_listed_free(tmp_path, monkeypatch):
    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: 1.0)
    other = {"id": "other", "label": "Other", "overrides": ["block=s_block", "regions=none"]}
    trials = build_plan(parse_spec(tiny_spec([BASE, other])), [], [], [0], tmp_path)
    trials[0].state = TrialState.CACHED
    costs = estimate(trials, cache=DiskCache("step_seconds", tmp_path / "c"))
    lines = format_costs(costs, trials, slots=1).splitlines()
    assert lines[1].split() == ["base", "0", "1", "-", "-", "-", "-"] and lines[2].split()[:3] == ["other", "1", "0"]
    waiting = format_costs(costs, trials, slots=1, waiting=2).splitlines()[-1]
    assert "(1 cached or reused: free, 2 left to other drivers)" in waiting


@pytest.mark.parametrize(
    ("resources", "has_cuda", "timed_on"),
    [("default", True, "cpu"), ("gpu", True, "cuda"), ("gpu", False, "cpu"), ("default", False, "cpu")],
)
def test_each_trial_is_timed_on_the_device_it_would_use(resources, has_cuda, timed_on, tmp_path, monkeypatch):
    """A trial that asks for no GPU trains on the CPU even on a GPU machine (``train_config``): it is timed there."""
    timed = []
    monkeypatch.setattr("runners.estimate._time_step", lambda config, steps, devices, where: timed.append(where) or 2.0)
    monkeypatch.setattr("runners.estimate._has_cuda", lambda: has_cuda)
    monkeypatch.setattr("runners.estimate._device_name", lambda where, threads=None: where)
    trials = build_plan(parse_spec(tiny_spec([BASE])), [], [f"resources={resources}"], [0], tmp_path)
    estimate(trials, cache=DiskCache("step_seconds", tmp_path / "cache"))
    assert timed == [timed_on]


@pytest.mark.parametrize(
    ("epochs", "eval_every", "test_clips"),
    [(3, 2, 1), (3, 2, 2), (4, 2, 2), (2, 1, 1), (0, 1, 2)],
    ids=["1x1-reuses-the-last-validation", "2-clips", "even", "every-epoch", "evaluation-trial"],
)
def test_the_estimate_prices_the_evaluations_fit_runs(epochs, eval_every, test_clips, tmp_path, monkeypatch):
    """Counts the views ``fit`` evaluates (per-epoch validations at 1 x 1, the protocol's final test) against
    ``evaluated_views``; an evaluation trial resumes a finished training and only tests."""
    import importlib

    from ean.data import generate_synthetic
    from tests.train.helpers import SYNTHETIC, tiny_config, with_changes

    fit_module = importlib.import_module("ean.train.fit")  # the module: ``ean.train.fit`` names the function
    root = generate_synthetic(str(tmp_path / "data"), **SYNTHETIC)
    config = with_changes(tiny_config(root, epochs=max(epochs, 1), eval_every=eval_every), data={"test_clips": 1})
    fit_module.fit(config, tmp_path / "run")  # trained; an evaluation trial (epochs 0) tests it again
    views: list[int] = []

    def counting(model, loader, *args, **kwargs):
        views.extend(clips.shape[1] if clips.dim() == 7 else 1 for clips, _, _ in loader for _ in clips)
        return evaluate(model, loader, *args, **kwargs)

    evaluate = fit_module.evaluate
    monkeypatch.setattr(fit_module, "evaluate", counting)
    config = with_changes(config, data={"test_clips": test_clips}, trainer={"epochs": epochs or 1})
    workdir = tmp_path / ("run" if epochs == 0 else "again")
    fit_module.fit(config, workdir)
    val_videos = split_size(config["data"], "val")
    assert sum(views) == evaluated_views(epochs, eval_every, test_clips) * val_videos


def test_a_dry_run_estimate_plans_a_study_whose_data_is_elsewhere(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: 1.0)
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "v1.yaml"
    spec.write_text(
        "name: v1\ntitle: T\nseeds: [0]\nprotocol: {clips: 1, crops: 1}\ncolumns: [top1]\n"
        "overrides: [data=something_v1, data.root=/nowhere, model.backbone=resnet18, model.num_segments=4]\n"
        "rows: [{id: a, label: A}]\n"
    )
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    assert main([str(spec), "--dry-run", "--mlflow-uri", uri]) == 2  # a plan that runs needs the data
    assert "data.root '/nowhere' does not exist" in capsys.readouterr().err
    assert main([str(spec), "--dry-run", "--estimate", "--mlflow-uri", uri]) == 0
    out, err = capsys.readouterr()
    assert "in all: 1 trial(s) to train" in out and "device-hours" in out
    assert "estimate: timing v1/a/seed0 (1/1 networks) on cpu:" in err  # progress, naming the device timed
    assert main([str(spec), "--dry-run", "--estimate", "--mlflow-uri", uri]) == 0
    assert "estimate: timing" not in capsys.readouterr().err  # the step time is kept: nothing is timed again
    assert main([str(spec), "--dry-run", "--estimate", "--json", "--mlflow-uri", uri]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) and "in all: 1 trial(s) to train" in err  # stdout stays the plan's JSON


def test_durations_read_as_hours_minutes_or_seconds():
    from runners.estimate import duration

    hours = (59309.2, 1.0, 0.5, 1 / 60, 0.005)
    assert [duration(h) for h in hours] == ["59309.2 h", "1.0 h", "30 min", "1 min", "18 s"]


@pytest.mark.parametrize(
    ("sizes", "problems"),
    [
        ({"input_size": 64}, []),
        (
            {"input_size": 64, "test_crop_size": 80},
            ["data.test_crop_size = 80: the motion module 'lmc' needs a multiple of 32 (patch 16, downsample 2)"],
        ),
        ({"input_size": 64, "test_crop_size": 80, "motion_options": {"patch": 20, "downsample": 2}}, []),
        ({"input_size": 64, "test_crop_size": 96}, []),
    ],
)
def test_an_lmc_crop_it_cannot_cut_into_patches_is_refused_at_planning(sizes, problems):
    """A crop the LMC cannot cut fails at planning, not after training when the test crop is evaluated."""
    from ean.trial import check_trial_config

    model = {"backbone": "resnet18", "modality": "rgb_lmc", "num_segments": 4, "num_classes": 10}
    model.update({k: v for k, v in sizes.items() if k != "test_crop_size"})
    data = {"dataset": "synthetic", "root": "x", "num_segments": 4, "frames_per_segment": 5, "num_classes": 10}
    data["test_crop_size"] = sizes.get("test_crop_size")
    config = {"model": model, "data": data, "trainer": {"batch_size": 4, "per_device_batch": None}, "seed": 0}
    found = check_trial_config(config, require_files=False)
    assert len(found) == len(problems) and all(f.startswith(p) for f, p in zip(found, problems, strict=True))


@pytest.mark.slow
def test_a_study_logs_its_estimated_cost_to_the_parent_run_once_a_dry_run_timed_its_networks(study_dir, capsys):
    """The running study times nothing: it logs the estimate only where ``--dry-run --estimate`` timed each network
    on this machine (the step times are in the on-disk cache)."""
    from mlflow.tracking import MlflowClient

    from study import mlflow_schema as S
    from tests.runners.conftest import cli_args, write_yaml

    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([BASE]))
    unique = "trainer.lr=0.0137"  # a recipe no other test timed: its step time is not in the cache yet
    args = cli_args(study_dir, spec, unique, "--no-report")
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")

    def parent_runs():
        exp = client.get_experiment_by_name("tiny")
        return client.search_runs(
            [exp.experiment_id], f"tags.`{S.TAG_KIND}` = '{S.KIND_STUDY}'", order_by=["start_time"]
        )

    assert main(args) == 0
    (first,) = parent_runs()
    assert S.METRIC_ESTIMATE_DEVICE_HOURS not in first.data.metrics  # not timed: nothing logged
    assert main([*args, "--dry-run", "--estimate"]) == 0  # the trial finished: free, its row listed
    lines = capsys.readouterr().out.splitlines()
    assert "0 trial(s) to train (1 cached or reused: free)" in lines[-1] and lines[-2].split()[:3] == ["base", "0", "1"]
    assert main([*args, "--dry-run", "--estimate", "--rerun"]) == 0
    printed = capsys.readouterr().out.splitlines()[-1]
    assert main([*args, "--rerun"]) == 0
    second = parent_runs()[-1]
    assert second.data.metrics[S.METRIC_ESTIMATE_DEVICE_HOURS] > 0
    assert second.data.metrics[S.METRIC_ESTIMATE_WALL_HOURS] > 0
    text = client.download_artifacts(second.info.run_id, S.ARTIFACT_ESTIMATE, str(study_dir))
    assert Path(text).read_text().splitlines()[-1] == printed  # the figure the dry run printed


def test_a_step_time_measured_by_other_code_is_timed_again(tmp_path, monkeypatch):
    """The cached time of a network is kept under the code that ran it: after an edit of ``ean`` (or another
    torch) the network is timed again, not priced with the old figure."""
    timed = []
    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: timed.append(1) or 2.0)
    cache = DiskCache("step_seconds", tmp_path / "cache")
    spec = parse_spec(tiny_spec([BASE], seeds=(0,)))
    trials = build_plan(spec, [], [], [0], tmp_path)
    estimate(trials, cache=cache)
    estimate(trials, cache=cache)
    assert len(timed) == 1  # the same code: the cached time
    monkeypatch.setattr("runners.estimate.step_code_signature", lambda: "torch 9.9, ean edited")
    assert estimate(trials, cache=cache, cached_only=True) is None
    estimate(trials, cache=cache)
    assert len(timed) == 2


def test_the_step_code_signature_follows_the_ean_sources(tmp_path, monkeypatch):
    package = tmp_path / "ean"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ean", raising=False)
    before = step_code_signature()
    (package / "models.py").write_text("x = 1\n")
    assert step_code_signature() != before


def test_a_starting_study_imports_no_torch_for_tune_or_an_untimed_estimate(tmp_path):
    """The driver of a study that trains imports Tune's side of the runner and looks up a known cost while its
    trials start; neither imports torch (about 2 s of CPU on 2 cores, taken from the trials' start-up) unless a
    step was timed by this code (here only one timed by older code is cached). Run in a fresh interpreter:
    this one has torch."""
    DiskCache("step_seconds", tmp_path).put({"model": {}, "code": "torch 0.1, ean older"}, 1.0)
    script = (
        "import sys; from pathlib import Path; import runners.scheduler, runners.session; "
        "from runners.cache import DiskCache; from runners.estimate import estimate; "
        "estimate([], cached_only=True, cache=DiskCache('step_seconds', Path(sys.argv[1]))); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NO-TORCH"]


@pytest.mark.parametrize(
    ("resources", "held", "gpus"),
    [
        (["resources=gpu"], 1.0, 1.0),
        (["resources=gpu", "resources.gpus=2"], 2.0, 2.0),  # two GPUs in one process: both held
        (["resources=gpu", "resources.gpus=0.5"], 1.0, 1.0),  # half a GPU, timed on a whole one: sharing slows both
        (["resources=ddp2", "resources.gpus=1"], 2.0, 2.0),  # two workers of a GPU each
        (["resources=default"], 1.0, 0.0),  # a CPU trial: its process, no GPU
    ],
)
def test_device_hours_count_the_devices_a_trial_holds(resources, held, gpus, tmp_path, monkeypatch):
    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: 1.0)
    (trial,) = build_plan(parse_spec(tiny_spec([BASE])), [], resources, [0], tmp_path)
    (cost,) = estimate([trial], cache=DiskCache("step_seconds", tmp_path / "cache"))
    assert (cost.devices, cost.gpus) == (held, gpus)
    assert cost.device_hours == pytest.approx((cost.train_hours + cost.eval_hours) * held)


def test_workers_share_the_evaluation_videos(tmp_path, monkeypatch):
    """Two DDP workers each evaluate half the val videos (rounded up), a third of a step's time per clip."""
    from ean.train.config import device_batch, resolve_trainer_config
    from runners.validate import train_config

    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: 1.0)
    (trial,) = build_plan(parse_spec(tiny_spec([BASE])), [], ["resources=ddp2", "trainer.epochs=1"], [0], tmp_path)
    (cost,) = estimate([trial], cache=DiskCache("step_seconds", tmp_path / "cache"))
    per_device, accumulation = device_batch(resolve_trainer_config(train_config(trial.config)), 2)
    val = split_size(trial.config["data"], "val")
    assert cost.eval_hours == pytest.approx(-(-val // 2) * (1.0 / (per_device * accumulation)) / 3 / 3600)


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 2), (0.5, 1)])
def test_a_cpu_trial_is_timed_with_the_threads_ray_gives_it(cpus, threads, tmp_path, monkeypatch):
    """Ray sets a worker's OMP_NUM_THREADS to the CPUs it holds: a 1-CPU trial computes on one thread, so its
    step is timed on one, whatever this machine has; the device line names them."""
    timed = []
    monkeypatch.setattr("runners.estimate._time_step", lambda config, *a: timed.append(config["trainer"]) or 1.0)
    overrides = [f"resources.cpus={cpus}", "trainer.num_threads=null"]  # the paper's trainer sets none
    (trial,) = build_plan(parse_spec(tiny_spec([BASE])), [], overrides, [0], tmp_path)
    estimate([trial], cache=DiskCache("step_seconds", tmp_path / "cache"))
    assert [t["num_threads"] for t in timed] == [threads]


def test_the_wall_clock_spreads_trials_not_devices_over_the_trials_at_once():
    """``--max-concurrent`` counts trials: 4 trials of 2 devices for 1 h each, 4 at once, take 1 h, not 2;
    a trial of 10 h among short ones still takes 10 h."""
    from runners.estimate import TrialCost, totals

    def cost(hours: float, devices: float, evaluates: str | None = None) -> TrialCost:
        return TrialCost(SimpleNamespace(evaluates=evaluates), 1.0, 1, hours, 0.0, devices)

    assert totals([cost(1.0, 2.0)] * 4, slots=4) == (8.0, 1.0)
    assert totals([cost(1.0, 2.0)] * 4, slots=2) == (8.0, 2.0)
    assert totals([cost(10.0, 1.0), cost(1.0, 1.0), cost(1.0, 1.0)], slots=2) == (12.0, 10.0)
    # evaluation rows start after every training: 10 h, then the longest evaluation (0.5 h)
    assert totals([cost(10.0, 1.0), cost(1.0, 1.0), cost(0.5, 1.0, "k"), cost(0.1, 1.0, "k")], slots=4) == (
        11.6,
        10.5,
    )


def test_the_wall_clock_holds_no_more_trials_than_the_clusters_cpus_and_gpus():
    """Two trials on half a GPU each, on one GPU: 10 h each timed on a whole one, so 20 h together, whatever
    the slots; 8 one-GPU trials 8 at once on 2 GPUs: 40 h; 15 slots of 1-CPU trials on 2 CPUs: 2 at once."""
    from runners.estimate import TrialCost, totals

    def cost(hours: float, gpus: float = 0.0, cpus: float = 1.0) -> TrialCost:
        return TrialCost(SimpleNamespace(evaluates=None), 1.0, 1, hours, 0.0, max(gpus, 1.0), gpus, cpus)

    assert totals([cost(10.0, gpus=1.0)] * 2, slots=2, cluster={"CPU": 8.0, "GPU": 1.0}) == (20.0, 20.0)
    assert totals([cost(10.0, gpus=1.0)] * 8, slots=8, cluster={"CPU": 64.0, "GPU": 2.0}) == (80.0, 40.0)
    assert totals([cost(10.0)] * 15, slots=15, cluster={"CPU": 2.0, "GPU": 0.0}) == (150.0, 75.0)
    assert totals([cost(10.0)] * 15, slots=15) == (150.0, 10.0)  # the cluster not known: the slots alone


def test_a_view_at_a_larger_test_crop_costs_its_pixels(tmp_path, monkeypatch):
    """Kinetics trains on 224 px crops and tests 256 px ones: its evaluation views cost (256 / 224)^2 each."""
    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: 1.0)
    cache = DiskCache("step_seconds", tmp_path / "cache")
    plan = [build_plan(parse_spec(tiny_spec([BASE])), [], extra, [0], tmp_path / str(i)) for i, extra in
            enumerate([[], ["+data.test_crop_size=96"]])]  # fmt: skip
    (same,), (larger,) = (estimate(trials, cache=cache) for trials in plan)
    assert plan[0][0].config["data"]["crop_size"] == 64 and larger.train_hours == same.train_hours
    assert larger.eval_hours == pytest.approx(same.eval_hours * (96 / 64) ** 2)


def test_by_default_as_many_trials_at_once_as_a_local_run_would_start(tmp_path, monkeypatch):
    from runners.estimate import default_slots

    monkeypatch.setattr("runners.estimate.os.cpu_count", lambda: 8)
    trials = build_plan(parse_spec(tiny_spec([BASE])), [], ["resources.cpus=2"], [0], tmp_path)
    assert default_slots(trials) == 4  # floor(8 CPUs / 2 per trial), as runners.scheduler would start them
    assert default_slots(trials, {"CPU": 64.0, "GPU": 8.0}) == 32  # a joined cluster's resources
    assert default_slots([]) == 1


def test_a_resumed_trial_costs_the_epochs_after_its_last_logged_one(tmp_path, monkeypatch):
    """A trial whose run logged epochs 1 and 2 of 3 resumes at epoch 3: one epoch to price, not three."""
    from runners.epochs import EpochReport
    from runners.tracking import StudyTracker

    monkeypatch.setattr("runners.estimate._time_step", lambda *args, **kwargs: 2.0)
    spec = parse_spec(tiny_spec([BASE], seeds=(0, 1)))
    trials = build_plan(spec, [], ["trainer.max_steps_per_epoch=null", "trainer.epochs=3"], [0, 1], tmp_path)
    tracker = StudyTracker(f"sqlite:///{tmp_path / 'm.db'}", spec.name, "hash")
    run_id = tracker.open_trial(trials[0], {}, rerun=False)
    for epoch in (1, 2):
        tracker.log_epoch(run_id, EpochReport(epoch, {"train_loss": 1.0}))
    tracker.mark_cached(trials, rerun=False)
    trials[1].epochs_done = 5  # left from an earlier reading: a new trial has trained nothing
    tracker.note_epochs_done(trials)
    assert [(t.state, t.epochs_done) for t in trials] == [(TrialState.RESUME, 2), (TrialState.NEW, 0)]
    resumed, new = estimate(trials, cache=DiskCache("step_seconds", tmp_path / "cache"))
    assert (resumed.steps, new.steps) == (new.steps // 3, new.steps)
    assert resumed.train_hours == pytest.approx(new.train_hours / 3)
    rows = [line.split()[:4] for line in format_costs([resumed, new], trials, slots=1).splitlines()[1:3]]
    assert rows == [["base", "1", "0", "2.00"], ["base", "(resumed)", "1", "0"]]  # each priced on its own line


def test_diving48s_official_sizes_follow_its_label_version(tmp_path):
    data = {"dataset": "diving48", "root": str(tmp_path / "none")}
    assert [split_size({**data, "labels": "v1"}, s) for s in ("train", "val")] == [15943, 2096]
    assert [split_size({**data, "labels": "v2"}, s) for s in ("train", "val")] == [15027, 1970]


def test_an_estimate_plans_without_the_weights_files_naming_them_by_path(tmp_path):
    """``--dry-run --estimate`` plans a study for another machine: weights files that are not here are named by
    their path (as its data is by its options), where a plan to run refuses them."""
    import torch

    from ean.models.pretrained import files_elsewhere, weights_identity
    from runners.plan import PlanError, build_plan
    from study.find import find_spec
    from study.profiles import profile_overrides
    from study.spec import load_spec

    spec = load_spec(find_spec("table8"))
    profile, cli = profile_overrides(spec, "smoke"), ["model.pretrained=/nowhere/r50.pt"]
    trials = build_plan(spec, profile, cli, [0], tmp_path, require_files=False, profile_name="smoke")
    assert trials and all(t.key_inputs["config"]["network"]["pretrained"] == "file:/nowhere/r50.pt" for t in trials)
    with pytest.raises(PlanError, match="/nowhere/r50.pt"):
        build_plan(spec, profile, cli, [0], tmp_path, profile_name="smoke")
    with files_elsewhere():
        assert weights_identity("/nowhere/det.pt", "fasterrcnn") == "file:/nowhere/det.pt"
    weights = tmp_path / "w.pt"
    torch.save({}, weights)
    with files_elsewhere():  # a file that is here is named by its contents, as always
        assert weights_identity(str(weights), "resnet50") == weights_identity(str(weights), "resnet50")
        assert weights_identity(str(weights), "resnet50").startswith("sha256:")
