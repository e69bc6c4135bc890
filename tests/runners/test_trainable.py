"""The trial function inside Ray Tune: an attempt after one that wrote the trial's result only reports it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runners import trainable
from runners.epochs import FINAL_KEY
from tests.runners.conftest import REPO


@pytest.fixture
def reported(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(trainable.tune, "report", calls.append)
    return calls


def tune_config(workdir) -> dict:
    return {"trial": {"config": {"resources": {"workers": 1}}, "workdir": str(workdir), "key": "k0"}}


def test_a_result_an_earlier_attempt_wrote_is_reported_not_computed_again(tmp_path, reported, monkeypatch):
    """The driver died after the trial wrote ``final.json`` and before it recorded the result: the resumed
    trial reports that result instead of testing (or training) again."""
    (tmp_path / trainable.FINAL_FILE).write_text(json.dumps({"top1": 61.5, "ray_node": "n1", "history": []}))

    def no_attempt(*args):
        raise AssertionError("the trial was computed again")

    monkeypatch.setattr(trainable, "_attempt", no_attempt)
    trainable.trial_function(tune_config(tmp_path))
    assert reported == [{FINAL_KEY: 1.0, "top1": 61.5}]


@pytest.mark.parametrize("left", [{"error": "loss is nan at epoch 1"}, None, "torn"])
def test_an_error_or_no_result_is_attempted_again(tmp_path, reported, monkeypatch, left):
    """An earlier attempt's error (or no result, or a torn file) is not a result: the trial runs, and its result
    replaces the file."""
    if left is not None:
        (tmp_path / trainable.FINAL_FILE).write_text(left if isinstance(left, str) else json.dumps(left))
        for name in (trainable.ERROR_FILE, "error_rank1.txt"):  # the error's tracebacks
            (tmp_path / name).write_text("Traceback (most recent call last): ...")
    attempts = []

    def attempt(trial, config, workdir):
        attempts.append(workdir)
        assert not (workdir / trainable.FINAL_FILE).exists()  # an attempt never sees the old file
        assert not list(workdir.glob("error*.txt"))  # nor the old error's traceback
        return {"top1": 40.0}

    monkeypatch.setattr(trainable, "_attempt", attempt)
    trainable.trial_function(tune_config(tmp_path))
    assert attempts == [tmp_path] and reported == [{FINAL_KEY: 1.0, "top1": 40.0}]
    assert json.loads((tmp_path / trainable.FINAL_FILE).read_text())["top1"] == 40.0


@pytest.mark.timeout(120)
def test_a_ddp_trial_reports_its_epochs_and_ends_as_soon_as_its_workers_end(tmp_path, reported, monkeypatch):
    """The trial polls its rank 0's epoch events while Ray Train runs its workers; their end ends the poll at
    once, not at the poll's next tick (here 10 minutes: a trial that waited for it would time out)."""
    import time

    monkeypatch.setattr(trainable, "EVENT_POLL_S", 600)

    class Trainer:  # Ray Train's TorchTrainer, as far as the trial uses it: rank 0 writes the events and result
        def __init__(self, worker, train_loop_config, **kwargs):
            self.workdir = tmp_path

        def fit(self):
            time.sleep(0.2)  # the poll's first look finds the workers running
            (self.workdir / trainable.EVENTS_FILE).write_text(json.dumps({"epoch": 1, "train_loss": 0.5}) + "\n")
            (self.workdir / trainable.FINAL_FILE).write_text(json.dumps({"top1": 50.0}))

    monkeypatch.setattr("ray.train.torch.TorchTrainer", Trainer)
    trial = {"config": {"resources": {"workers": 2, "cpus": 1}}, "workdir": str(tmp_path), "key": "k0"}
    assert trainable._run_ddp(trial) == {"top1": 50.0}
    assert reported == [{"epoch": 1, "train_loss": 0.5}]


def test_a_ddp_trial_holds_its_workers_resources_only_under_train_v1_and_v2():
    """Train v1 (``RAY_TRAIN_V2_ENABLED=0``) would add a CPU for its trainer to rank 0's bundle, which the trial's
    demand and the check that a node can hold it do not count: the trainer holds none, as under v2 (in-process
    here: v2 accepts no ``trainer_resources``)."""
    import subprocess
    import sys

    from runners.demand import trial_demand
    from runners.trainable import scaling_config

    res = {"workers": 2, "cpus": 2, "gpus": 0}
    assert scaling_config(res).trainer_resources is None  # Train v2, the default
    probe = (
        "from runners.trainable import scaling_config\n"
        "pgf = scaling_config({'workers': 2, 'cpus': 2, 'gpus': 0}).as_placement_group_factory()\n"
        "print(pgf.required_resources)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, "RAY_TRAIN_V2_ENABLED": "0", "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == str(trial_demand({"resources": res})), out.stderr[-2000:]


def planned_payload(tmp_path, weights) -> dict:
    """The payload of a tiny study's trial planned with the weights file ``weights`` (a resnet18 state dict)."""
    from pathlib import Path

    from runners.plan import build_plan
    from runners.scheduler import payload
    from study.spec import load_spec
    from tests.runners.conftest import tiny_spec, write_yaml

    spec = load_spec(write_yaml(tmp_path / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base", "overrides": []}])))
    cli = [f"model.pretrained={weights or 'null'}", f"data.root={tmp_path / 'data'}"]
    (trial,) = build_plan(spec, [], cli, [0], tmp_path)
    return payload(trial, Path(tmp_path / "storage"), max_failures=0)


def resnet18_weights(path, fill: float | None = None):
    import torch
    import torchvision

    state = torchvision.models.resnet18().state_dict()
    if fill is not None:
        state = {k: torch.full_like(v, fill) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, path)


def test_a_weights_file_replaced_after_the_plan_fails_the_trial_naming_it(tmp_path, reported, monkeypatch):
    """The key names the file's contents the plan hashed: a trial that would train from other contents (the file
    replaced since, or another file at that path on its node) fails, not retried, naming the change, and trains
    nothing; before, it trained from the new contents under the old key."""
    weights = tmp_path / "w.pth"
    resnet18_weights(weights)
    trial = planned_payload(tmp_path, weights)
    assert trial["key_inputs"]["config"]["network"]["pretrained"].startswith("sha256:")
    assert trainable.key_problem(trial) is None  # nothing changed: the same inputs where it runs
    resnet18_weights(weights, fill=1.0)

    def no_fit(*args):
        raise AssertionError("the trial trained")

    monkeypatch.setattr(trainable, "_run_fit", no_fit)
    trainable.trial_function({"trial": trial})
    assert reported == [{FINAL_KEY: 1.0, "failed": 1.0}]
    error = json.loads((tmp_path / "storage" / "tiny" / trial["key"] / trainable.FINAL_FILE).read_text())["error"]
    assert f"is not what its key {trial['key']} names" in error
    assert "config.network.pretrained: sha256:" in error and "run the study again" in error


def test_another_version_of_ean_where_the_trial_runs_fails_it(tmp_path, monkeypatch):
    import ean

    trial = planned_payload(tmp_path, None)
    monkeypatch.setattr(ean, "__version__", "0.0.1")
    assert f"code: {trial['key_inputs']['code']} -> 0.0.1" in trainable.key_problem(trial)


def something_payload(tmp_path) -> tuple[dict, Path]:
    """A trial of a tiny study on a Something V1 layout (annotations only), and the layout's root."""
    from runners.plan import build_plan
    from runners.scheduler import payload
    from study.spec import load_spec
    from tests.layouts import something_v1_layout
    from tests.runners.conftest import tiny_spec, write_yaml

    root = something_v1_layout(tmp_path / "sth")
    overrides = ["data=something_v1", "trainer=smoke", "model.pretrained=null", "model.backbone=resnet18"]
    spec = {**tiny_spec([{"id": "base", "label": "Base", "overrides": []}]), "overrides": overrides}
    (trial,) = build_plan(load_spec(write_yaml(tmp_path / "t.yaml", spec)), [], [f"data.root={root}"], [0], tmp_path)
    return payload(trial, Path(tmp_path / "storage"), max_failures=0), root


def test_annotations_that_cannot_be_read_where_the_trial_runs_fail_it_not_retried(tmp_path, reported):
    """The key check reads the annotations again: a malformed file is the trial's error (kept with its traceback),
    reported as its final result, not an exception Tune would retry."""
    trial, root = something_payload(tmp_path)
    (root / "validation.csv").write_text("not;a;valid;line\n\x00")
    trainable.trial_function({"trial": trial})
    assert reported == [{FINAL_KEY: 1.0, "failed": 1.0}]
    workdir = tmp_path / "storage" / "tiny" / trial["key"]
    error = json.loads((workdir / trainable.FINAL_FILE).read_text())["error"]
    assert error.startswith("DataError") and "not retried" in error and (workdir / trainable.ERROR_FILE).is_file()


def test_a_data_root_missing_where_the_trial_runs_is_named(tmp_path, reported):
    import shutil

    trial, root = something_payload(tmp_path)
    shutil.rmtree(root)
    problem = trainable.key_problem(trial)  # "on this machine", or on the Ray node an earlier test left running
    assert problem.startswith(f"trial tiny/base/seed0: the data root {root} is not on ")
    assert problem.endswith(" (the plan read the data there)")


def test_each_ddp_rank_checks_the_key_where_it_runs(tmp_path):
    """A DDP trial's ranks may run on other nodes than its coordinator: each checks its own files, and a rank
    that finds other inputs writes the trial's error and raises (Ray Train ends the other ranks)."""
    weights = tmp_path / "w.pth"
    resnet18_weights(weights)
    trial = planned_payload(tmp_path, weights)
    resnet18_weights(weights, fill=1.0)
    workdir = Path(trial["workdir"])
    workdir.mkdir(parents=True)

    def no_fit(*args):
        raise AssertionError("the rank trained")

    with pytest.raises(ValueError, match="is not what its key"):
        trainable.ddp_rank(trial, no_fit)
    assert "config.network.pretrained" in json.loads((workdir / trainable.FINAL_FILE).read_text())["error"]


def test_a_weights_file_missing_where_the_trial_runs_fails_it_not_retried(tmp_path, reported):
    weights = tmp_path / "w.pth"
    resnet18_weights(weights)
    trial = planned_payload(tmp_path, weights)
    weights.unlink()
    trainable.trial_function({"trial": trial})  # raises nothing Tune would retry
    assert reported == [{FINAL_KEY: 1.0, "failed": 1.0}]
    error = json.loads((Path(trial["workdir"]) / trainable.FINAL_FILE).read_text())["error"]
    assert "pretrained weights file not found" in error


def test_another_studys_checkpoint_removed_since_the_plan_leaves_the_training_to_start_from_scratch(tmp_path):
    gone = tmp_path / "other" / "k" / "checkpoints" / "last.pt"
    trainable.start_from(str(gone), tmp_path / "mine", required=False)
    assert not (tmp_path / "mine").exists()
    with pytest.raises(FileNotFoundError):  # an evaluation's training checkpoint is required
        trainable.start_from(str(gone), tmp_path / "mine")
