"""A store with more runs than one page of an MLflow search: every search of the runner reads every page.

MLflow returns at most ``max_results`` runs per search (50000 at most) and a token for the rest; here the store
answers pages of two (``tests.mlflow_pages``), so each search below needs several.
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from runners.plan import TrialState
from runners.tracking import StudyTracker
from study import mlflow_schema as S
from study.mlflow_search import all_experiments, all_runs
from tests.runners.test_faults import a_trial

MANY = 5  # runs (experiments) per search: three pages of two


@pytest.fixture
def store(tmp_path, pages_of_two) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def finished(tracker: StudyTracker, key: str) -> str:
    run_id = tracker.open_trial(a_trial(key=key), {}, rerun=False)
    tracker.finish_trial(run_id, {"top1": 50.0}, None, "/nowhere")
    return run_id


def test_every_page_of_runs_and_experiments_is_read_in_order(store):
    client = MlflowClient(store)
    ids = [client.create_experiment(f"e{i}") for i in range(MANY)]
    runs = [client.create_run(ids[0], start_time=1000 + i).info.run_id for i in range(MANY)]
    found = all_runs(client, [ids[0]], "", order_by=["attributes.start_time DESC"])
    assert [r.info.run_id for r in found] == runs[::-1]
    assert {e.experiment_id for e in all_experiments(client)} >= set(ids)
    assert len(client.search_runs([ids[0]])) == 2  # the store answers pages of two: the test means something


def test_a_run_met_on_two_pages_is_read_once(store, monkeypatch):
    """Another driver finished a run while the pages were read: the offsets moved, a run came twice."""
    client = MlflowClient(store)
    exp = client.create_experiment("e")
    runs = [client.create_run(exp, start_time=1000 + i).info.run_id for i in range(MANY)]
    search = client.search_runs

    def one_more_after_the_first_page(*args, **kwargs):
        page = search(*args, **kwargs)
        if kwargs.get("page_token") is None:
            runs.append(client.create_run(exp, start_time=2000).info.run_id)  # newest: first in the order
        return page

    monkeypatch.setattr(client, "search_runs", one_more_after_the_first_page)
    found = [r.info.run_id for r in all_runs(client, [exp], "", order_by=["attributes.start_time DESC"])]
    assert len(found) == len(set(found)) and set(found) == set(runs[:MANY])


def test_each_finished_trial_of_the_study_is_cached(store):
    tracker = StudyTracker(store, "tiny", "hash")
    for i in range(MANY):
        finished(tracker, f"k{i}")
    trials = [a_trial(key=f"k{i}") for i in range(MANY)]
    StudyTracker(store, "tiny", "hash").mark_cached(trials, rerun=False)
    assert [t.state for t in trials] == [TrialState.CACHED] * MANY


def test_each_trial_another_study_finished_is_reused(store):
    for i in range(MANY):  # one study per key: experiments over several pages, runs too
        finished(StudyTracker(store, f"other{i}", "hash"), f"k{i}")
    finished(StudyTracker(store, "other0", "hash"), "k9")
    trials = [a_trial(key=f"k{i}") for i in (*range(MANY), 9)]
    StudyTracker(store, "tiny", "hash").mark_cached(trials, rerun=False)
    assert [t.state for t in trials] == [TrialState.REUSED] * (MANY + 1)


def test_reconcile_ends_every_run_left_running(store):
    tracker = StudyTracker(store, "tiny", "hash")
    client = MlflowClient(store)
    tags = {S.TAG_KIND: S.KIND_TRIAL, S.TAG_STUDY: "tiny", S.TAG_TRIAL_KEY: "k"}
    orphans = [client.create_run(tracker.experiment_id, tags=tags).info.run_id for _ in range(MANY)]
    assert sorted(tracker.reconcile()) == sorted(orphans)
    assert {client.get_run(r).info.status for r in orphans} == {S.STATUS_KILLED}


def test_a_rerun_supersedes_every_older_finished_run_of_its_key(store):
    tracker = StudyTracker(store, "tiny", "hash")
    client = MlflowClient(store)
    tags = {S.TAG_KIND: S.KIND_TRIAL, S.TAG_STUDY: "tiny", S.TAG_TRIAL_KEY: "k"}
    runs = [client.create_run(tracker.experiment_id, tags=tags).info.run_id for _ in range(MANY + 1)]
    for run_id in runs:
        client.set_terminated(run_id, S.STATUS_FINISHED)
    assert sorted(tracker.supersede_older(runs[-1])) == sorted(runs[:-1])
