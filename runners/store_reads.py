"""Reads of a sqlite MLflow store kept on disk until the store changes: a study with nothing to train, its dry
run and its table then import no MLflow (2-3 s of imports on 2 cores).

A study asks the store two things before it knows there is nothing to do: each trial's state
(``StudyTracker.mark_cached``), with whether a run of the study is RUNNING, and, for its table, the study's runs
(``reports.make.read_runs``). Each read is kept in the on-disk cache (``runners.cache``, kind ``store``)
with the store's version taken before the read (``study.store_version``: the sqlite file's identity, size,
mtime and change counter). A later invocation uses it while the store has that version, i.e. nothing was
written to the store since the read, and asks MLflow otherwise. An entry's key also holds what the read
depends on besides the store: the question (study, spec hash, trials), the code that asked it (``runners``,
``study``, ``reports``: each file's size and mtime; ``ean`` and the plugins: ``code_digest``) and MLflow's
version. A store without a version (a tracking server, a database server, a sqlite file in WAL mode or with
a journal beside it) is always asked.
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from runners.cache import DiskCache
from runners.trials import Trial, TrialState
from study.store_version import store_version
from study.tracking_check import sqlite_file

#: The packages whose code reads the store and judges what it read.
READING_CODE = ("runners", "study", "reports")


class StoreReads:
    """The kept reads of one tracking store.

    Args:
        uri: the MLflow tracking URI.
        folder: another cache folder (tests).
    """

    def __init__(self, uri: str, folder: Path | None = None):
        path = sqlite_file(uri)
        self.uri = uri
        self.store = str(Path(path).resolve()) if path is not None else None
        self.cache = DiskCache("store", folder)

    def version(self) -> str | None:
        """The store's version now (None: it has none, and nothing is kept or used)."""
        return store_version(self.uri) if self.store is not None else None

    def get(self, question: dict[str, Any]) -> Any | None:
        """What was read for ``question`` when the store had the version it has now, else None."""
        if self.store is None:
            return None
        entry = self.cache.get(self._key(question))
        if not isinstance(entry, dict) or entry.get("version") is None or entry["version"] != self.version():
            return None
        return entry["value"]

    def put(self, question: dict[str, Any], version: str | None, value: Any) -> None:
        """Keeps ``value``, read for ``question`` from the store at ``version``, taken before the read; nothing is
        kept when the store has no version, or another now (a write landed during the read, which may have seen
        it: the answer would be of a later store than its version says)."""
        if self.store is not None and version is not None and version == self.version():
            self.cache.put(self._key(question), {"version": version, "value": value})

    def _key(self, question: dict[str, Any]) -> dict[str, Any]:
        return {"store": self.store, "question": question, "code": reading_code()}


@functools.cache
def reading_code() -> list[str]:
    """The code that reads the store and judges what it read, and MLflow's version (computed once)."""
    from runners.code_digest import code_digest
    from runners.plan_cache import code_signature

    try:
        mlflow = version("mlflow")
    except PackageNotFoundError:
        mlflow = "none"
    return [code_signature(READING_CODE), code_digest(), mlflow]


# -- the trials' states ------------------------------------------------------------------------------------
def states_question(study: str, study_hash: str, trials: list[Trial]) -> dict[str, Any]:
    """The question ``mark_cached`` answers for ``trials`` (no ``--rerun``): what a kept answer is keyed by."""
    return {"states": study, "hash": study_hash, "trials": [[t.name, t.key, t.evaluates] for t in trials]}


def states_answer(tracker, trials: list[Trial], running: bool) -> dict[str, Any]:
    """What ``tracker.mark_cached(trials, rerun=False)`` found (called after it), to keep: each trial's state,
    run and source, the trials computed by other code (``other_code``) and that code's digests, whether a run of
    the study is RUNNING, the study's experiment (``""``: none yet) and whether it is complete (tagged as the
    runner tags it: a read-only tracker may find it is not, which the runner then does)."""
    states = [[t.state.value, t.run_id, t.source, t.generation] for t in trials]
    return {"states": states, "other_code": list(tracker.other_code), "other_digests": list(tracker.other_digests),
            "running": running, "experiment_id": tracker.experiment_id, "complete": tracker.complete}  # fmt: skip


def nothing_to_do(answer: dict[str, Any] | None) -> bool:
    """Whether a kept answer (``states_answer``) says a study invocation has nothing to write: its experiment
    there and complete, no run of it RUNNING, every trial FINISHED in it."""
    if answer is None or not answer["experiment_id"] or not answer["complete"] or answer["running"]:
        return False
    return all(state == TrialState.CACHED for state, *_ in answer["states"])


def set_states(trials: list[Trial], answer: dict[str, Any]) -> None:
    """Sets the trials' states from a kept answer (``states_answer``), as ``mark_cached`` set them."""
    for trial, (state, run_id, source, generation) in zip(trials, answer["states"], strict=True):
        trial.state, trial.run_id, trial.source, trial.generation = TrialState(state), run_id, source, generation


# -- the study's runs, for its table -----------------------------------------------------------------------
def study_runs(uri: str, study: str):
    """The study's runs for its table (``reports.make.StudyRuns``): read while the store is unchanged since
    they were read last, else from MLflow (then kept).

    Raises:
        reports.make.StudyNotFoundError: the store has no experiment of the study.
    """
    from reports.make import read_runs
    from reports.make import study_runs as runs_of

    reads = StoreReads(uri)
    question = {"runs": study}
    kept = reads.get(question)
    if kept is None:
        version = reads.version()  # before the read: a write meanwhile leaves it unused
        kept = read_runs(study, uri)
        reads.put(question, version, kept)
    return runs_of(kept)
