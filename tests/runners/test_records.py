"""The runner's typed records: trial states, epoch reports and model counts, and their dict forms (Tune's
results, the journal's entries, old journal entries included). No Ray, no MLflow."""

from __future__ import annotations

import json
from concurrent.futures import Future

import pytest

from runners.epochs import FINAL_KEY, EpochReport
from runners.journal import (
    Applier,
    BufferedTracker,
    Journal,
    entry_counts,
    entry_report,
    epoch_entry,
    open_entry,
    replay,
)
from runners.plan import ModelCounts, Trial, TrialState
from runners.progress import Progress
from study.spec import Row


def a_trial(**fields) -> Trial:
    return Trial("tiny", Row(id="base", label="Base"), 0, {"trainer": {"epochs": 3}}, "k0", "fp", **fields)


class OpeningTracker:
    """The part of ``StudyTracker`` an ``open`` entry uses: records the trial it opens."""

    study = "tiny"

    def __init__(self):
        self.opened: list[Trial] = []

    def run_opened_by(self, entry_id: str) -> None:
        return None

    def open_trial(self, trial: Trial, tags: dict[str, str], rerun: bool) -> str:
        self.opened.append(trial)
        return "run0"


def test_trial_states_print_and_serialise_as_their_words():
    assert [str(s) for s in TrialState] == ["new", "cached", "reused", "resume"]
    assert f"{TrialState.CACHED:7}|" == "cached |"
    assert json.dumps({"state": TrialState.REUSED}) == '{"state": "reused"}'
    assert TrialState("resume") is TrialState.RESUME
    assert [s for s in TrialState if s.finished] == [TrialState.CACHED, TrialState.REUSED]


def test_an_epoch_report_round_trips_through_tunes_dict():
    report = EpochReport(3, {"train_loss": 0.5, "val_top1": 41.0, "lr": 0.01})
    assert report.to_dict() == {"epoch": 3.0, "train_loss": 0.5, "val_top1": 41.0, "lr": 0.01}
    assert EpochReport.from_dict(report.to_dict()) == report


def test_a_tune_result_keeps_only_the_logged_numbers():
    result = {"epoch": 2.0, "train_loss": 0.7, "training_iteration": 2, "done": False, "trial_id": "abc", "lr": True}
    assert EpochReport.of_result(result) == EpochReport(2, {"train_loss": 0.7})
    assert EpochReport.of_result({FINAL_KEY: 1.0, "epoch": 3.0, "top1": 50.0}) is None
    assert EpochReport.of_result({"training_iteration": 1}) is None


def test_an_epoch_journal_entry_keeps_its_form():
    report = EpochReport(4, {"train_loss": 0.25})
    entry = epoch_entry("k0", report)
    assert entry == {"op": "epoch", "key": "k0", "epoch": 4, "metrics": {"train_loss": 0.25}}
    assert entry_report(json.loads(json.dumps(entry))) == report


def test_an_open_entry_round_trips_state_and_counts():
    trial = a_trial(state=TrialState.RESUME, run_id="r1", counts=ModelCounts(params=1200, macs=3400))
    entry = json.loads(json.dumps(open_entry(trial, {}, rerun=False)))
    assert entry["state"] == "resume" and entry["counts"] == {"params": 1200, "macs": 3400}
    tracker = OpeningTracker()
    Applier(tracker, ()).apply(entry)
    (opened,) = tracker.opened
    assert opened.state is TrialState.RESUME and opened.counts == trial.counts and opened.run_id == "r1"


@pytest.mark.parametrize(
    ("fields", "counts"),
    [
        ({"profile": {"params": 1200, "flops": 3400}}, ModelCounts(1200, 3400)),  # journals of older versions
        ({"profile": {}}, None),
        ({"counts": {"params": 5, "macs": 6}}, ModelCounts(5, 6)),
        ({"counts": None}, None),
    ],
)
def test_the_counts_of_old_and_new_open_entries(fields, counts):
    assert entry_counts(fields) == counts


def test_an_old_open_entry_with_profile_replays():
    entry = json.loads(json.dumps(open_entry(a_trial(), {}, rerun=False)))
    del entry["counts"]
    entry["profile"] = {"params": 1200, "flops": 3400}
    tracker = OpeningTracker()
    Applier(tracker, ()).apply(entry)
    assert tracker.opened[0].counts == ModelCounts(params=1200, macs=3400)
    assert tracker.opened[0].state is TrialState.NEW


def test_an_entry_a_stopped_driver_journaled_before_counting_is_replayed_with_the_plans_counts(tmp_path):
    """The driver journaled a trial's ``open`` without counts (its preparation was still counting) and stopped
    before applying it; the next invocation's plan knows the counts, and the replayed run gets them."""
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(open_entry(a_trial(), {}, rerun=False))  # counts None
    tracker = OpeningTracker()
    assert replay(tracker, journal, (), {"k0": ModelCounts(params=1200, macs=3400), "k9": ModelCounts(1, 2)}) == 1
    assert [t.counts for t in tracker.opened] == [ModelCounts(params=1200, macs=3400)]


def test_progress_shows_an_epochs_loss_and_accuracy(capsys):
    Progress(total=2, epochs=3).epoch("tiny/base/seed0", EpochReport(2, {"train_loss": 0.51234, "val_top1": 40.0}))
    line = capsys.readouterr().out
    assert "tiny/base/seed0: epoch 2/3 train_loss 0.512, val_top1 40 |" in line


def _clocked_progress(monkeypatch, capsys, total: int, epochs: int, untrained: frozenset[str] = frozenset()):
    """A Progress on a fake clock, and ``at(seconds, event, *args)``: the time left its line then shows."""
    now = [0.0]
    monkeypatch.setattr("runners.progress.time.monotonic", lambda: now[0])
    progress = Progress(total=total, epochs=epochs, untrained=untrained)

    def at(seconds: float, event: str, name: str, *args) -> str:
        now[0] = seconds
        getattr(progress, event)(name, *args)
        return capsys.readouterr().out.rsplit(", ", 1)[1].strip()

    return at


def test_the_time_left_counts_the_epochs_trained_in_this_invocation(capsys, monkeypatch):
    """A trial resumed at epoch 9 of 10 has trained one epoch, not nine; an epoch a retried trial reports again
    is not trained twice; an unreported trial has all its epochs ahead."""
    at = _clocked_progress(monkeypatch, capsys, total=2, epochs=10)
    assert at(0, "started", "a") == "? left"
    assert at(10, "epoch", "a", EpochReport(9, {})) == "~1:50 left"  # 10 s an epoch; 1 + 10 epochs, one at a time
    assert at(10, "started", "b") == "~1:40 left"  # two at a time now: b's 10 epochs
    assert at(30, "epoch", "b", EpochReport(1, {})) == "~2:15 left"  # 30 s for 2 epochs; max(10 / 2, 9) epochs left
    assert at(40, "started", "b") == "~2:15 left"  # b retried
    assert at(50, "epoch", "b", EpochReport(1, {})) == "~2:15 left"  # its epoch 1 again: not trained twice
    assert at(55, "epoch", "b", EpochReport(2, {})) == "~1:33 left"  # 35 s for 3 epochs; max(9 / 2, 8) left
    assert at(60, "finished", "a", 50.0) == "~1:33 left"  # 8 epochs of b


def test_an_evaluation_trial_adds_no_epochs_to_the_time_left(capsys, monkeypatch):
    """An evaluation row's trial tests a finished training again: it trains no epoch, so the time left while
    the trainings run counts theirs only."""
    at = _clocked_progress(monkeypatch, capsys, total=3, epochs=10, untrained=frozenset({"e"}))
    at(0, "started", "a")
    assert at(10, "epoch", "a", EpochReport(1, {})) == "~3:10 left"  # 9 of a, 10 of b: 190 s (not 10 more of e)
    assert at(10, "finished", "e", 50.0) == "~3:10 left"  # e done: b's 10 epochs are still ahead


def test_the_time_left_is_right_from_the_first_report_when_trials_run_side_by_side(capsys, monkeypatch):
    """8 trials of 10 epochs of 100 s, 4 at a time, take 2000 s: the first report (at 100 s) says about 1900
    s are left, not 4x that; when one trial's last 5 epochs are left, 500 s (not 5 / 4 of them)."""
    at = _clocked_progress(monkeypatch, capsys, total=8, epochs=10)
    for name in "abcd":
        at(0, "started", name)
    assert at(100, "epoch", "a", EpochReport(1, {})) == "~32:55 left"  # 100 s x (9 + 7 x 10) / 4 = 1975 s
    for name in "bc":
        at(100, "epoch", name, EpochReport(1, {}))
    assert at(100, "epoch", "d", EpochReport(1, {})) == "~31:40 left"  # 100 s x (4 x 9 + 4 x 10) / 4: exact
    at = _clocked_progress(monkeypatch, capsys, total=4, epochs=10)
    for name in "abcd":
        at(0, "started", name)
    for name in "bcd":
        at(0, "failed_trial", name, "")
    for epoch in range(1, 5):
        at(100 * epoch, "epoch", "a", EpochReport(epoch, {}))
    assert at(500, "epoch", "a", EpochReport(5, {})) == "~8:20 left"  # 100 s x 5: one trial's epochs, in a row


class Recorder:
    """Records the calls made on it (a stand-in for the callback's writer and progress display)."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, *args, *kwargs.values()))


def test_the_tune_callback_hands_each_epoch_to_the_writer_and_the_display():
    from types import SimpleNamespace

    from runners.scheduler import MlflowTrialLogger
    from runners.trainable import epoch_report

    writer, progress = Recorder(), Recorder()
    callback = MlflowTrialLogger(writer, [a_trial()], lambda trial: None, progress)
    tune_trial = SimpleNamespace(config={"trial": {"key": "k0"}})
    event = {"epoch": 2, "metrics": {"train_loss": 0.5, "bad_files": 0, "skipped": True}, "done": False}
    result = {**epoch_report(event).to_dict(), "training_iteration": 2, "done": False}
    callback.on_trial_result(2, [], tune_trial, result)
    callback.on_trial_result(3, [], tune_trial, {FINAL_KEY: 1.0, "top1": 50.0})
    report = EpochReport(2, {"train_loss": 0.5, "bad_files": 0.0})
    assert writer.calls == [("log_epoch", "k0", report)]
    assert progress.calls == [("epoch", "tiny/base/seed0", report)]


def test_a_trial_opened_before_its_network_was_counted_is_opened_with_the_counts(tmp_path):
    """A trial can start while the study's preparation still counts the networks; its run is opened once that
    preparation (the tracker's Future) is done, and then with the counts (Params, FLOPs) it found."""
    trial, preparing = a_trial(), Future()
    writer = BufferedTracker(preparing, Journal(tmp_path / "journal.jsonl"), (), report=lambda line: None)
    writer.open_trial(trial, {}, rerun=False)  # journaled without counts: none are known yet
    trial.counts = ModelCounts(params=1200, macs=3400)  # the preparation counts it, then hands over its tracker
    tracker = OpeningTracker()
    preparing.set_result(tracker)
    assert writer.flush(30) == 0
    writer.close()
    assert [t.counts for t in tracker.opened] == [ModelCounts(params=1200, macs=3400)]
