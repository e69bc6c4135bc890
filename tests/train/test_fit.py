"""fit on the synthetic dataset: reports, outputs, exact resume, seeds, errors, and ensembles of trials."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ean.train import (
    EnsembleError,
    NonFiniteLossError,
    ResumeError,
    TrainerConfigError,
    ensemble,
    fit,
    load_checkpoint,
    read_scores,
    read_starts,
    write_scores,
)
from tests.train.helpers import Recorder, SimulatedCrash, tiny_config, with_changes

REPO = Path(__file__).resolve().parents[2]

# Epoch metrics that depend on the computation only (not on timing or on the process's memory).
EXACT = ("train_loss", "train_top1", "lr", "val_loss", "val_top1", "val_top5", "bad_files")
EPOCH_KEYS = {"train_loss", "train_top1", "lr", "clips_per_s", "peak_memory_mb", "bad_files", "epoch_time_s"}
# Three epochs of three steps with dropout, flips and multi-scale crops, a warm-up epoch and a decay at epoch 2:
# every piece of state that a resume must restore is exercised.
RESUME = {"epochs": 3, "warmup_epochs": 1, "lr_steps": [2]}


def _exact(report: dict) -> dict:
    return {k: v for k, v in report["metrics"].items() if k in EXACT}


def _untimed(result: dict) -> dict:
    """fit's result less the timings in its history (the history's numbers must match exactly)."""
    return {**result, "history": [{k: v for k, v in e.items() if k in (*EXACT, "epoch")} for e in result["history"]]}


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """Runs fit once per (seed, workers) and keeps (workdir, recorder, result)."""
    cache = {}

    def run(seed: int = 0, num_workers: int = 0):
        if (seed, num_workers) not in cache:
            config = with_changes(tiny_config(synthetic_root, seed=seed, **RESUME), data={"num_workers": num_workers})
            workdir = tmp_path_factory.mktemp(f"seed{seed}-workers{num_workers}")
            recorder = Recorder()
            cache[seed, num_workers] = (config, workdir, recorder, fit(config, workdir, reporter=recorder))
        return cache[seed, num_workers]

    return run


def test_reports_every_epoch_then_done(trained):
    config, workdir, recorder, result = trained()
    epochs = recorder.epochs()
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    for report in epochs:
        assert set(report["metrics"]) == EPOCH_KEYS | {"val_loss", "val_top1", "val_top5"}
        assert report["checkpoint"] == str(workdir / "checkpoints" / "last.pt")
        assert 0 <= report["metrics"]["val_top1"] <= 100 and report["metrics"]["bad_files"] == 0
    assert [r["metrics"]["lr"] for r in epochs] == pytest.approx([0.01, 0.01, 0.001])
    final = recorder.final()
    assert final["epoch"] == 3 and final["scores_path"] == result["scores_path"]
    assert final["metrics"] == {k: result[k] for k in ("top1", "top5", "test_loss", "mean_class_top1")}


def test_result_and_scores_file(trained):
    config, workdir, recorder, result = trained()
    assert result["epochs"] == 3 and result["protocol"] == "1 clip x 1 crop" and result["num_videos"] == 4
    assert result["top1"] == recorder.epochs()[-1]["metrics"]["val_top1"]  # 1 x 1: the last evaluation
    with np.load(workdir / "scores" / "val_scores.npz", allow_pickle=False) as z:
        assert z["scores"].dtype == np.float32 and z["scores"].shape == (4, 4)
        assert np.allclose(z["scores"].sum(axis=1), 1, atol=1e-5)
        assert z["labels"].tolist() == [0, 1, 2, 3] and z["video_index"].tolist() == [0, 1, 2, 3]
        names = z["class_names"].tolist()
    assert len(names) == 4 and set(result["per_class_top1"]) == set(names)
    top1 = 100 * np.mean(read_scores(result["scores_path"]).scores.argmax(1) == np.arange(4))
    assert result["top1"] == pytest.approx(top1)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_resume_continues_exactly(trained, tmp_path, num_workers):
    """Must-show 1: stopped after epoch 1 and resumed = never stopped (weights, optimizer, metrics)."""
    config, workdir, recorder, result = trained(num_workers=num_workers)
    crashed = Recorder(fail_after_epoch=1)
    with pytest.raises(SimulatedCrash):
        fit(config, tmp_path, reporter=crashed)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 1
    resumed = Recorder()
    resumed_result = fit(config, tmp_path, reporter=resumed)
    assert [r["epoch"] for r in resumed.epochs()] == [2, 3]
    assert [_exact(r) for r in resumed.epochs()] == [_exact(r) for r in recorder.epochs()[1:]]
    expected = {**result, "scores_path": str(tmp_path / "scores" / "val_scores.npz")}
    assert _untimed(resumed_result) == _untimed(expected)
    assert [s["start_epoch"] for s in read_starts(tmp_path)] == [1, 2], "the trial's own record of its starts"
    a, b = (load_checkpoint(w / "checkpoints" / "last.pt") for w in (workdir, tmp_path))
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    momenta = [[s["momentum_buffer"] for s in c["optimizer"]["state"].values()] for c in (a, b)]
    assert all(torch.equal(x, y) for x, y in zip(*momenta, strict=True))
    assert (a["epoch"], a["global_step"], a["schedule"]) == (b["epoch"], b["global_step"], b["schedule"])


def test_same_seed_same_metrics_other_seed_differs(trained, synthetic_root, tmp_path):
    """Must-show 2."""
    config, _, recorder, result = trained(seed=0)
    again = Recorder()
    assert fit(config, tmp_path, reporter=again)["test_loss"] == result["test_loss"]
    assert [_exact(r) for r in again.epochs()] == [_exact(r) for r in recorder.epochs()]
    _, _, other, _ = trained(seed=1)
    assert [r["metrics"]["train_loss"] for r in other.epochs()] != [r["metrics"]["train_loss"] for r in again.epochs()]


def test_finished_run_only_evaluates_again(trained):
    config, workdir, _, result = trained()
    recorder = Recorder()
    assert fit(config, workdir, reporter=recorder) == result
    assert recorder.epochs() == [] and recorder.final()["done"]


def test_loader_workers_do_not_change_the_run(trained):
    """Workers prefetch beyond a cut-short epoch; the next epoch's clips must not depend on it."""
    assert [_exact(r) for r in trained(num_workers=1)[2].epochs()] == [_exact(r) for r in trained()[2].epochs()]


def test_resume_after_changing_loader_workers_and_moving_the_data(trained, synthetic_root, tmp_path):
    """Loader workers and where the data lies are not part of a run: a kill, a change of them, a resume."""
    import shutil

    config, _, recorder, _ = trained(num_workers=0)
    crashed = Recorder(fail_after_epoch=1)
    with pytest.raises(SimulatedCrash):
        fit(config, tmp_path / "run", reporter=crashed)
    moved = shutil.copytree(synthetic_root, tmp_path / "moved")
    changed = with_changes(config, data={"num_workers": 1, "root": str(moved), "decode_timeout_s": 5})
    resumed = Recorder()
    fit(changed, tmp_path / "run", reporter=resumed)
    assert [r["epoch"] for r in resumed.epochs()] == [2, 3]
    assert [_exact(r) for r in resumed.epochs()] == [_exact(r) for r in recorder.epochs()[1:]]


def test_a_run_trained_longer_follows_its_new_schedule(synthetic_root, tmp_path):
    """Two cosine epochs, then ``epochs: 3`` on the same workdir: the third epoch runs on the 3-epoch cosine
    (the lr a 3-epoch run has there), not on the saved 2-epoch one, which ends at lr 0."""
    short = tiny_config(synthetic_root, schedule="cosine", epochs=2)
    longer = with_changes(short, trainer={"epochs": 3})
    fit(short, tmp_path / "extended")
    extended = Recorder()
    fit(longer, tmp_path / "extended", reporter=extended)
    fresh = Recorder()
    fit(longer, tmp_path / "fresh", reporter=fresh)
    assert [r["epoch"] for r in extended.epochs()] == [3]
    assert extended.epochs()[0]["metrics"]["lr"] == fresh.epochs()[2]["metrics"]["lr"] > 0


def test_resume_refuses_another_config(trained):
    config, workdir, _, _ = trained()
    with pytest.raises(ResumeError, match=r"trainer.lr: checkpoint 0.01, now 0.02"):
        fit(with_changes(config, trainer={"lr": 0.02}), workdir)


def test_resume_refuses_a_checkpoint_of_another_code_version(trained, tmp_path, monkeypatch):
    """What a config computes may differ between versions (0.4.3 moved parameters between the optimizer's
    groups): a checkpoint of another version is refused by name, not fed to torch."""
    import shutil

    import ean

    config, workdir, _, _ = trained()
    copy, written = tmp_path / "copy", ean.__version__
    shutil.copytree(workdir, copy)
    monkeypatch.setattr(ean, "__version__", "9.9.9")
    with pytest.raises(ResumeError, match=rf"written by ean {written}, this is ean 9.9.9"):
        fit(config, copy)


def test_ensemble_of_trials(trained, tmp_path):
    """The paper's "En" rows: the mean of the members' log-probabilities (their normalised geometric mean)."""
    paths = [trained(seed=s)[3]["scores_path"] for s in (0, 1)]
    members = [read_scores(p) for p in paths]
    result = ensemble(paths, out=tmp_path / "en.npz")
    geometric = np.sqrt(members[0].scores.astype(np.float64) * members[1].scores)
    mean = geometric / geometric.sum(1, keepdims=True)
    assert result["top1"] == pytest.approx(100 * np.mean(mean.argmax(1) == members[0].labels))
    assert result["members"] == 2 and result["num_videos"] == 4 and result["top5"] == 100.0
    assert np.allclose(read_scores(result["scores_path"]).scores, mean, atol=1e-6)
    single = ensemble(paths[:1])
    assert single["top1"] == trained(seed=0)[3]["top1"]


def test_an_ensemble_ranks_classes_as_the_sum_of_its_members_logits(tmp_path):
    """The authors' ``average_scores.py`` sums raw outputs: saved as probabilities, the members' scores rank the
    same in the ensemble, where averaged probabilities would not (here: video 0, class 1 against class 0)."""
    logits = [np.array([[4.0, 3.9, -6.0], [0.0, 1.0, 2.0]]), np.array([[-3.0, 0.0, 2.9], [2.0, 1.0, 0.5]])]
    paths = []
    for i, z in enumerate(logits):
        probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        paths.append(write_scores(tmp_path / f"m{i}.npz", probs.astype(np.float32), [1, 2], [0, 1], ["a", "b", "c"]))
    summed = (logits[0] + logits[1]).argsort(1)[:, ::-1]
    averaged = ensemble(paths, out=tmp_path / "en.npz")
    assert (read_scores(averaged["scores_path"]).scores.argsort(1)[:, ::-1] == summed).all()
    assert averaged["top1"] == 100.0 * np.mean(summed[:, 0] == [1, 2])
    probabilities = sum(np.exp(z) / np.exp(z).sum(1, keepdims=True) for z in logits)
    assert probabilities[0].argmax() != summed[0, 0]  # the rule this replaced ranks video 0 otherwise


def test_ensemble_refuses_mismatched_members(tmp_path):
    scores = np.full((3, 2), 0.5, dtype=np.float32)
    base = write_scores(tmp_path / "a.npz", scores, [0, 1, 0], [0, 1, 2], ["x", "y"])
    other_videos = write_scores(tmp_path / "b.npz", scores, [0, 1, 0], [0, 1, 5], ["x", "y"])
    other_classes = write_scores(tmp_path / "c.npz", scores, [0, 1, 0], [0, 1, 2], ["x", "z"])
    other_labels = write_scores(tmp_path / "d.npz", scores, [0, 1, 1], [0, 1, 2], ["x", "y"])
    with pytest.raises(EnsembleError, match=r"only in .*a.npz: \[2\]; only in .*b.npz: \[5\]"):
        ensemble([base, other_videos])
    with pytest.raises(EnsembleError, match="share the classes"):
        ensemble([base, other_classes])
    with pytest.raises(EnsembleError, match=r"different labels to videos \[2\]"):
        ensemble([base, other_labels])
    with pytest.raises(EnsembleError, match="at least one"):
        ensemble([])


def test_eval_and_checkpoint_every(synthetic_root, tmp_path):
    recorder = Recorder()
    config = tiny_config(synthetic_root, epochs=3, eval_every=2, checkpoint_every=2, max_steps_per_epoch=1)
    fit(config, tmp_path, reporter=recorder)
    reports = recorder.epochs()
    assert ["val_top1" in r["metrics"] for r in reports] == [False, True, True]  # and always after the last
    assert [r["checkpoint"] is not None for r in reports] == [False, True, True]


def test_non_finite_loss_stops_the_trial(synthetic_root, tmp_path):
    config = tiny_config(synthetic_root, lr=1e30, clip_grad=None, epochs=1)
    with pytest.raises(NonFiniteLossError, match=r"at epoch 1, step [23]"):
        fit(config, tmp_path)


def test_num_classes_must_match_the_dataset(synthetic_root, tmp_path):
    config = with_changes(tiny_config(synthetic_root), model={"num_classes": 5})
    with pytest.raises(TrainerConfigError, match="model.num_classes = 5 but dataset 'synthetic'.* has 4 classes"):
        fit(config, tmp_path)


def test_reporter_per_rank(monkeypatch):
    """Rank 0 alone reports by default; with report_all_ranks every rank does (Ray Train's report is a barrier)."""
    fit_module = importlib.import_module("ean.train.fit")
    monkeypatch.setattr(fit_module, "is_main", lambda: False)
    recorder = Recorder()
    assert fit_module._ranked(recorder, all_ranks=False) is None
    fit_module._ranked(recorder, all_ranks=True)({"epoch": 1, "checkpoint": "/x/last.pt", "done": False})
    assert recorder.reports == [{"epoch": 1, "checkpoint": None, "done": False}]
    monkeypatch.setattr(fit_module, "is_main", lambda: True)
    assert fit_module._ranked(recorder, all_ranks=False) is recorder


def test_a_trial_imports_no_compiler(synthetic_root, tmp_path):
    """torch's optimizers import ``torch._dynamo`` and ``torch.use_deterministic_algorithms`` imports
    ``torch._inductor`` (together 1.5-2 s of CPU in each trial process, before its first step and at its end);
    a one-device trial that does not ask for deterministic kernels imports neither (DDP's constructor does)."""
    config = with_changes(tiny_config(synthetic_root), trainer={"deterministic": False, "clip_grad": 20.0, "epochs": 1})
    code = (
        "import json, sys; from ean.train import fit; "
        f"fit(json.loads(sys.argv[1]), {str(tmp_path / 'run')!r}); "
        "print(sorted(m for m in ('torch._dynamo', 'torch._inductor') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert read_starts(tmp_path / "run")
