"""MLflow bookkeeping of a study: the driver alone writes, following ``study.mlflow_schema``.

One parent run per invocation; exactly one child run per trial key, reopened (never duplicated) on retry
or resume, and a new one on ``--rerun``, which supersedes the FINISHED one when it finishes (tag
``ean.superseded_by``; the old run stays FINISHED); runs left RUNNING by a killed driver are reconciled on the
next invocation. Metrics are written in batches (``log_batch``).

By MLflow's conventions: every run is born with MLflow's system tags (``system_tags``: git commit, source
name and type, user), a trial run's data are its run inputs (``data_inputs``: metadata only, the data
fingerprint as digest), and the parent run carries the spec, the plan and, once made, the report (its
Markdown table as the run's description).
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from runners import code_digest as digests
from runners.code_digest import other_code_note
from runners.epochs import RAY_NODE_KEY, EpochReport, is_number
from runners.reuse import carried_tags, copy_artifacts, copy_metrics, finished_elsewhere
from runners.store_template import create_from_template, sqlite_path
from runners.trials import ModelCounts, Trial, TrialState
from study import mlflow_schema as S
from study.mlflow_search import all_runs

MAX_PARAMS_PER_BATCH = 100
NO_EXPERIMENT = ""  # the experiment id of a read-only tracker whose study has no experiment yet
PARAM_VALUE_LIMIT = 6000
#: A Markdown footnote's definition (at a line's start) and its reference.
FOOTNOTE_DEF = re.compile(r"^\[\^[^\]\s]+\]:[ \t]*", re.MULTILINE)
FOOTNOTE_REF = re.compile(r"\[\^[^\]\s]+\]")
#: ``mlflow.source.name`` of the runs the runner creates: the command that runs a study.
SOURCE_NAME = "python -m runners.run"


def git_commit() -> str:
    """The source tree's commit (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def system_tags(source_name: str = SOURCE_NAME) -> dict[str, str]:
    """MLflow's system tags of a run this process creates (the UI shows them): its git commit, source name and
    type (``LOCAL``) and user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        user = "unknown"
    return {
        S.MLFLOW_GIT_COMMIT: git_commit(),
        S.MLFLOW_SOURCE_NAME: source_name,
        S.MLFLOW_SOURCE_TYPE: S.SOURCE_TYPE_LOCAL,
        S.MLFLOW_USER: user,
    }


def data_inputs(config: dict[str, Any], fingerprint: str, evaluation: bool = False) -> list[DatasetInput]:
    """A trial's data as MLflow dataset inputs, metadata only (nothing is uploaded): one per split it reads,
    named ``<dataset>/<split>``, its digest the data fingerprint, its source the data root, its context tag
    ``training`` / ``validation`` (``evaluation`` when the run only evaluates: an evaluation row, an
    ensemble). Empty when the config names no dataset or the trial has no fingerprint."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    data = config.get("data") or {}
    name = data.get("dataset")
    if not name or not fingerprint:
        return []
    source = LocalArtifactDatasetSource(str(data.get("root") or name))
    splits = (
        [(S.SPLIT_VAL, S.CONTEXT_EVALUATION)]
        if evaluation
        else [(S.SPLIT_TRAIN, S.CONTEXT_TRAINING), (S.SPLIT_VAL, S.CONTEXT_VALIDATION)]
    )
    inputs = []
    for split, context in splits:
        meta = MetaDataset(source, name=S.dataset_input_name(name, split), digest=fingerprint).to_dict()
        dataset = Dataset(meta["name"], meta["digest"], meta["source_type"], meta["source"])
        inputs.append(DatasetInput(dataset, tags=[InputTag(S.MLFLOW_DATASET_CONTEXT, context)]))
    return inputs


def run_note(markdown: str, artifact: str) -> str:
    """``markdown`` as a run's description (``mlflow.note.content``): its footnotes made plain paragraphs (the
    UI's description renderer shows ``[^name]`` as it is; the artifact's preview renders them), cut to what
    MLflow stores whole, with a line that names ``artifact`` (where the whole text is) when cut."""
    markdown = FOOTNOTE_REF.sub("", FOOTNOTE_DEF.sub("", markdown))
    if len(markdown) <= S.MAX_TAG_VALUE:
        return markdown
    tail = f"\n\n... (cut to fit the run's description; the whole text is the artifact `{artifact}`)"
    return markdown[: S.MAX_TAG_VALUE - len(tail)] + tail


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"block": "eab"}}`` -> ``{"model.block": "eab"}`` (values as MLflow param strings)."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if not isinstance(value, str) else value
    return out


def artifact_location(tracking_uri: str, study: str) -> str | None:
    """Where a new experiment of a local sqlite store keeps its runs' artifacts: ``mlruns/STUDY`` in the
    store's folder, wherever the driver runs (MLflow's default, ``./mlruns``, follows the working directory).
    None for other stores: a tracking server decides (its ``--artifacts-destination``)."""
    path = sqlite_path(tracking_uri)
    return None if path is None else (path.resolve().parent / "mlruns" / study).as_uri()


class StudyTracker:
    """The MLflow side of one study invocation.

    Args:
        tracking_uri: any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000`` ...).
        study: the study's name (the experiment's name).
        study_hash: ``reports.spec.spec_hash`` of the spec.
    """

    def __init__(self, tracking_uri: str, study: str, study_hash: str, experiment_id: str | None = None):
        self.uri, self.study, self.study_hash = tracking_uri, study, study_hash
        if experiment_id is None:  # may write: a new sqlite store is copied from the template, not migrated
            create_from_template(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        # NO_EXPERIMENT: a read-only tracker of a study with no experiment yet
        self.experiment_id = self._experiment() if experiment_id is None else experiment_id
        self.parent_id: str | None = None
        self._logged: dict[str, set[int]] = {}  # run id -> epochs in MLflow
        self.other_code: list[str] = []  # cached or reused trials computed by other sources (mark_cached)
        self.other_digests: list[str] = []  # the code digests they were computed by
        self.complete = True  # the experiment is there and tagged as the runner tags it (``read_only`` may say not)

    @classmethod
    def read_only(cls, tracking_uri: str, study: str, study_hash: str) -> StudyTracker:
        """A tracker that only reads (a dry run): ``mark_cached`` and ``trial_runs`` see the store as it is,
        other studies included, and nothing is created when the study has no experiment yet."""
        found = MlflowClient(tracking_uri).get_experiment_by_name(study)
        tracker = cls(tracking_uri, study, study_hash, found.experiment_id if found else NO_EXPERIMENT)
        tracker.complete = found is not None and found.tags.get(S.EXPERIMENT_KIND_TAG) == S.EXPERIMENT_KIND
        return tracker

    @functools.cached_property
    def system_tags(self) -> dict[str, str]:
        """MLflow's system tags of the runs this tracker creates (``system_tags``), computed once."""
        return system_tags()

    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.study)
        if found and found.tags.get(S.EXPERIMENT_KIND_TAG) == S.EXPERIMENT_KIND:
            return found.experiment_id  # nothing written: the store keeps its version (``runners.store_reads``)
        if found:
            exp_id = found.experiment_id
        else:
            exp_id = self.client.create_experiment(self.study, artifact_location(self.uri, self.study))
        self.client.set_experiment_tag(exp_id, S.EXPERIMENT_KIND_TAG, S.EXPERIMENT_KIND)
        return exp_id

    # -- reading --------------------------------------------------------------------------------------
    def trial_runs(self) -> dict[str, list[Any]]:
        """Trial key -> the study's trial runs with that key, newest first."""
        if self.experiment_id == NO_EXPERIMENT:
            return {}
        runs = all_runs(
            self.client, [self.experiment_id], S.trial_filter(self.study), order_by=["attributes.start_time DESC"]
        )
        by_key: dict[str, list[Any]] = {}
        for run in runs:
            by_key.setdefault(run.data.tags.get(S.TAG_TRIAL_KEY, ""), []).append(run)
        return by_key

    def rerun_since(self, keys: list[str]) -> int | None:
        """When the unfinished ``--rerun`` of the trials ``keys`` by this code began (Unix ms), or None."""
        if self.experiment_id == NO_EXPERIMENT:
            return None
        since = self.client.get_experiment(self.experiment_id).tags.get(rerun_tag(keys))
        return int(since) if since else None

    def begin_rerun(self, keys: list[str]) -> tuple[int, bool]:
        """Begins a ``--rerun`` of the trials ``keys`` now, or goes on with the unfinished one of the same trials
        by this code (the lease holder only): returns (when it began, in Unix ms; whether it goes on)."""
        since = self.rerun_since(keys)
        if since is not None:
            return since, True
        since = int(time.time() * 1000)
        self.client.set_experiment_tag(self.experiment_id, rerun_tag(keys), str(since))
        return since, False

    def end_rerun(self, keys: list[str]) -> None:
        """Ends the ``--rerun`` of the trials ``keys`` (every one has finished): the next one begins anew."""
        self.client.set_experiment_tag(self.experiment_id, rerun_tag(keys), "")

    def mark_cached(self, trials: list[Trial], rerun: bool, rerun_since: int | None = None) -> None:
        """Sets each trial's state and run id from the store: cached (FINISHED here), reused (FINISHED in
        another study), resume (reopen an unfinished run) or new.

        Args:
            trials: the planned trials.
            rerun: ``--rerun``: a trial FINISHED here is new again (its run superseded once the new one finishes).
            rerun_since: with ``rerun``, when the rerun began (Unix ms): a trial whose newest FINISHED run
                finished since then was trained (or resumed to its end) by it, and is cached.
        """
        runs = self.trial_runs()
        unfinished_here = {t.key for t in trials if not _finished(runs.get(t.key, []))}
        elsewhere = {} if rerun else finished_elsewhere(self.client, self.study, unfinished_here)
        self.other_code.clear()
        self.other_digests.clear()

        def training_of(trial: Trial) -> Any | None:
            """The FINISHED run of an evaluation's training this study uses: its own, else the one it reuses."""
            here = _finished(runs.get(trial.evaluates, [])) if trial.evaluates else []
            return here[0] if here else next(iter(elsewhere.get(trial.evaluates, [])), None)

        for trial in trials:
            existing = runs.get(trial.key, [])
            finished = _finished(existing)
            redone = rerun and rerun_since is not None and bool(finished) and _ended(finished[0]) >= rerun_since
            keep = bool(finished) and (redone or not rerun)
            stale = keep and _evaluated_another(finished[0], trial, training_of(trial))
            source = _reusable(elsewhere.get(trial.key, []), trial, training_of(trial))
            if keep and not stale:
                trial.state, trial.run_id = TrialState.CACHED, finished[0].info.run_id
                self._note_code(trial, finished[0])
            elif source is not None:
                self._note_code(trial, source)
                trial.state, trial.run_id = TrialState.REUSED, source.info.run_id
                trial.source = source.data.tags.get(S.TAG_REUSED_FROM_NAME) or source.info.run_name
            elif existing and existing[0].info.status != S.STATUS_FINISHED:
                trial.state, trial.run_id = TrialState.RESUME, existing[0].info.run_id
            else:  # new; with --rerun (or a stale evaluation), run_id is the FINISHED run it supersedes
                trial.state, trial.run_id = TrialState.NEW, finished[0].info.run_id if finished else None
            trial.generation = len(finished) if (rerun or stale) and trial.state not in _NO_FOLDER else 0

    def note_epochs_done(self, trials: list[Trial]) -> None:
        """Sets ``epochs_done`` of each trial ``mark_cached`` found to resume: the last epoch its run logged
        (one query per such trial; the estimate prices the epochs after it)."""
        for trial in trials:
            resumed = trial.state == TrialState.RESUME and trial.run_id
            trial.epochs_done = max(self._logged_epochs(trial.run_id), default=0) if resumed else 0

    def _note_code(self, trial: Trial, run: Any) -> None:
        """Adds ``trial`` to ``other_code`` when ``run`` was computed by sources other than this process's."""
        computed_by = run.data.tags.get(S.TAG_CODE_DIGEST)
        if computed_by and computed_by != digests.code_digest():
            self.other_code.append(trial.name)
            if computed_by not in self.other_digests:
                self.other_digests.append(computed_by)

    def other_code_note(self) -> str | None:
        """A note naming the cached and reused trials (``mark_cached``) computed by other sources, or None."""
        return other_code_note(self.other_code, self.other_digests)

    def has_running(self) -> bool:
        """Whether a run of the study's experiment is RUNNING (a live driver's, or one a dead driver left)."""
        if self.experiment_id == NO_EXPERIMENT:
            return False
        query = f"attributes.status = '{S.STATUS_RUNNING}'"
        return bool(self.client.search_runs([self.experiment_id], query, max_results=1))

    # -- the invocation ---------------------------------------------------------------------------------
    def reconcile(self) -> list[str]:
        """Ends every run of the study's experiment left RUNNING (by a driver that died: the caller holds the
        study's lease, so no live driver owns them); returns their ids. A run that trains is marked KILLED (a
        planned trial's run is reopened when the trial starts again); a reused trial's copy or an ensemble's
        average cut short holds nothing computed and is deleted, so the copy or average made again is its key's
        only run."""
        stale = []
        running = all_runs(self.client, [self.experiment_id], f"attributes.status = '{S.STATUS_RUNNING}'")
        for run in running:
            if {S.TAG_REUSED_FROM, S.TAG_ENSEMBLE_OF} & run.data.tags.keys():
                self.client.delete_run(run.info.run_id)
            else:
                self._end(run.info.run_id, S.STATUS_KILLED, "left RUNNING by a driver that stopped")
            stale.append(run.info.run_id)
        return stale

    def start_parent(
        self,
        profile: str | None,
        argv: list[str],
        description: str = "",
        files: dict[str, str] | None = None,
        report_folder: str | None = None,
    ) -> str:
        """Creates the invocation's parent run with all its tags (``description``: its note, shown in the UI),
        then logs ``files`` (artifact name -> text: the spec, the plan) to it; returns its id."""
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        tags = {**self.system_tags, S.TAG_KIND: S.KIND_STUDY, S.TAG_STUDY: self.study}
        tags[S.TAG_STUDY_HASH] = self.study_hash
        tags[S.TAG_PROFILE] = profile or ""
        tags[S.TAG_REPORT_FOLDER] = report_folder or ""
        tags[S.TAG_COMMAND] = " ".join(argv)[:5000]
        if description:
            tags[S.MLFLOW_RUN_NOTE] = run_note(description, S.ARTIFACT_SPEC)
        run = self.client.create_run(self.experiment_id, run_name=f"{self.study} {stamp}", tags=tags)
        self.parent_id = run.info.run_id
        for name, text in (files or {}).items():
            self.client.log_text(self.parent_id, text, name)
        return self.parent_id

    def log_report(self, files: list[Path], markdown: str, out: Path) -> None:
        """Logs the report's files (``reports.make``: tables, CSVs, figures; paths under ``out``) to the parent
        run under ``report/``, and its Markdown table as the run's description. The parent may have ended:
        MLflow takes artifacts and tags of a finished run. A no-op without a parent run."""
        if not self.parent_id:
            return
        for path in files:
            folder = Path(S.ARTIFACT_REPORT) / os.path.relpath(Path(path).parent, out)  # a linked figures/ too
            self.client.log_artifact(self.parent_id, str(path), artifact_path=folder.as_posix())
        table = f"{S.ARTIFACT_REPORT}/{self.study}.md"
        self.client.set_tag(self.parent_id, S.MLFLOW_RUN_NOTE, run_note(markdown, table))

    def end_parent(self, status: str) -> None:
        if self.parent_id:
            self.client.set_terminated(self.parent_id, status)

    def open_trial(self, trial: Trial, tags: dict[str, str], rerun: bool) -> str:
        """Creates the trial's run with all its tags in one call, or reopens its unfinished one; returns its id.

        A rerun (``rerun``, the trial NEW with the run id of its FINISHED run) opens a new run and leaves the
        FINISHED one alone: it stays the trial's result until the new run finishes and supersedes it."""
        all_tags = self._trial_tags(trial, tags)
        if trial.state == TrialState.RESUME and trial.run_id:
            run_id = trial.run_id
            self.client.update_run(run_id, status=S.STATUS_RUNNING)
            if S.TAG_ERROR in self._tags(run_id):
                self.client.delete_tag(run_id, S.TAG_ERROR)
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
        else:  # with --rerun, a FINISHED run of the key stays as it is until this one finishes (finish_trial)
            name = trial.name
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id
        return self.complete_open(run_id, trial, evaluation=S.TAG_EVALUATES in all_tags)

    def complete_open(self, run_id: str, trial: Trial, evaluation: bool) -> str:
        """Gives an opened run (created with its tags, or reopened) what it lacks of its params, ``config.yaml``,
        data inputs and Params/FLOPs; returns ``run_id``. Each is written only where missing, so an opening cut
        short (the store failed after the run was created, the driver died) is completed when its journal
        entry is applied again, and a reopened run keeps the values it has."""
        run = self.client.get_run(run_id)
        params = {k: v for k, v in flatten(trial.config).items() if k not in run.data.params}
        self._log_params(run_id, params)
        if all(f.path != S.ARTIFACT_CONFIG for f in self.client.list_artifacts(run_id)):
            self._log_config(run_id, trial.config)
        self.log_data(run_id, trial.config, trial.data_fingerprint, evaluation=evaluation)
        self._logged[run_id] = self._logged_epochs(run_id)
        if trial.counts is not None:
            counts = count_metrics(trial.counts)
            self.log_metrics(run_id, {k: v for k, v in counts.items() if k not in run.data.metrics})
        trial.run_id = run_id
        return run_id

    def reuse_trial(self, trial: Trial, tags: dict[str, str]) -> str:
        """Gives a reused trial its own FINISHED run in this study, a copy of the source's results that points
        at it (``runners.reuse``); returns the new run id."""
        source = self.client.get_run(trial.run_id)
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial.name,
            tags={**self._trial_tags(trial, tags), **carried_tags(source)},
        )
        run_id = run.info.run_id
        self._log_params(run_id, flatten(trial.config))
        self._log_config(run_id, trial.config)
        copy_metrics(self.client, source, run_id)
        copy_artifacts(self.client, source, run_id)
        self.log_data(run_id, trial.config, trial.data_fingerprint, evaluation=trial.evaluates is not None)
        self.client.set_terminated(run_id, S.STATUS_FINISHED)
        trial.run_id = run_id
        return run_id

    def _trial_tags(self, trial: Trial, tags: dict[str, str]) -> dict[str, str]:
        """A trial run's tags at birth: MLflow's system tags (``tags`` may carry the journaled driver's own,
        which win), its parent, the trial's and ``tags``."""
        parent = {S.TAG_PARENT_RUN_ID: self.parent_id} if self.parent_id else {}
        column = {S.TAG_COLUMN: trial.column} if trial.column else {}
        return {
            **self.system_tags,
            **parent,
            S.TAG_KIND: S.KIND_TRIAL,
            S.TAG_STUDY: self.study,
            S.TAG_ROW: trial.row.id,
            S.TAG_ROW_LABEL: trial.row.label,
            S.TAG_SEED: str(trial.seed),
            S.TAG_TRIAL_KEY: trial.key,
            S.TAG_DATA_FINGERPRINT: trial.data_fingerprint,
            **column,
            **tags,
        }

    def log_data(self, run_id: str, config: dict[str, Any], fingerprint: str, evaluation: bool = False) -> int:
        """Logs the trial's data as the run's inputs (``data_inputs``), each once: an input the run already has
        (same name and digest; a reopened run, a journal entry applied again) is not logged again. Returns how
        many it logged."""
        have = {_identity(i) for i in self.client.get_run(run_id).inputs.dataset_inputs}
        new = [i for i in data_inputs(config, fingerprint, evaluation) if _identity(i) not in have]
        if new:
            self.client.log_inputs(run_id, datasets=new)
        return len(new)

    def status(self, run_id: str) -> str:
        """The run's status (FINISHED, FAILED, RUNNING or KILLED)."""
        return self.client.get_run(run_id).info.status

    def run_opened_by(self, entry_id: str) -> str | None:
        """The id of the run a journal entry created (``runners.journal``), if it exists."""
        runs = self.client.search_runs([self.experiment_id], f"tags.`{S.TAG_OPENED_BY}` = '{entry_id}'", max_results=1)
        return runs[0].info.run_id if runs else None

    def _tags(self, run_id: str) -> dict[str, str]:
        return self.client.get_run(run_id).data.tags

    def _logged_epochs(self, run_id: str) -> set[int]:
        return {m.step for m in self.client.get_metric_history(run_id, S.EPOCH_MARKER)}

    def _log_params(self, run_id: str, flat: dict[str, str]) -> None:
        params = [Param(k, v[:PARAM_VALUE_LIMIT]) for k, v in flat.items()]
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params[i : i + MAX_PARAMS_PER_BATCH])

    def _log_config(self, run_id: str, config: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / S.ARTIFACT_CONFIG
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            self.client.log_artifact(run_id, str(path))

    # -- results --------------------------------------------------------------------------------------
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if is_number(v)]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[i : i + 1000])

    def log_epoch(self, run_id: str, report: EpochReport) -> bool:
        """Logs one epoch's metrics at step = epoch (1-based), once: an epoch already in MLflow (one replayed
        after a resume, or reported again by a retried DDP trial) is skipped. Returns whether it logged."""
        if run_id not in self._logged:
            self._logged[run_id] = self._logged_epochs(run_id)
        logged = self._logged[run_id]
        if report.epoch in logged:
            return False
        self.log_metrics(run_id, report.metrics, step=report.epoch)
        logged.add(report.epoch)
        return True

    def backfill(self, run_id: str, history: list[dict[str, Any]], keys: tuple[str, ...]) -> list[int]:
        """Logs the epochs of a trial's own history (its checkpoint's, complete across resumes) that MLflow
        lacks: those a killed driver never received. Returns the epochs it filled in."""
        self._logged[run_id] = self._logged_epochs(run_id)
        reports = sorted((EpochReport.from_dict(entry, keys) for entry in history), key=lambda r: r.epoch)
        filled = []
        for report in reports:
            if self.log_epoch(run_id, report):
                filled.append(report.epoch)
        return filled

    def finish_trial(self, run_id: str, final: dict[str, Any], scores_path: str | None, workdir: str) -> None:
        """Logs the trial's results and marks its run FINISHED, after tagging the older FINISHED runs of its key
        (a ``--rerun``'s predecessors) superseded by it; each step may be applied again (``runners.journal``)."""
        self.supersede_older(run_id)
        results = {k: final[k] for k in (S.METRIC_TOP1, S.METRIC_TOP5, S.METRIC_TEST_LOSS) if k in final}
        if "num_videos" in final:  # fit's result: the videos the final evaluation scored
            results[S.METRIC_TEST_VIDEOS] = final["num_videos"]
        self.log_metrics(run_id, results)
        if scores_path and Path(scores_path).is_file():
            self.client.log_artifact(run_id, scores_path, artifact_path=str(Path(S.ARTIFACT_SCORES).parent))
        per_class = final.get("per_class_top1")
        if per_class:
            self.client.log_dict(run_id, per_class, S.ARTIFACT_PER_CLASS)
        self.client.set_tag(run_id, S.TAG_WORKDIR, workdir)
        if final.get(RAY_NODE_KEY):
            self.client.set_tag(run_id, S.TAG_RAY_NODE, final[RAY_NODE_KEY])
        checkpoint = Path(workdir) / "checkpoints" / "last.pt"
        if checkpoint.is_file():
            self.client.set_tag(run_id, S.TAG_CHECKPOINT, str(checkpoint))
        self.client.set_terminated(run_id, S.STATUS_FINISHED)

    def supersede_older(self, run_id: str) -> list[str]:
        """Tags every other FINISHED run of ``run_id``'s trial key in this study ``ean.superseded_by`` = ``run_id``
        (their status stays FINISHED; runs superseded earlier keep their tag); returns the ids it tagged.

        Only a ``--rerun`` gives a trial key a second run while a FINISHED one exists; the reports and the
        ensembles leave superseded runs out, and the plan takes the newest FINISHED run."""
        key = self._tags(run_id).get(S.TAG_TRIAL_KEY)
        if not key:
            return []
        query = f"{S.trial_filter(self.study)} AND tags.`{S.TAG_TRIAL_KEY}` = '{key}'"
        query += f" AND attributes.status = '{S.STATUS_FINISHED}'"
        tagged = []
        for run in all_runs(self.client, [self.experiment_id], query):
            if run.info.run_id != run_id and S.TAG_SUPERSEDED_BY not in run.data.tags:
                self.client.set_tag(run.info.run_id, S.TAG_SUPERSEDED_BY, run_id)
                tagged.append(run.info.run_id)
        return tagged

    def fail_trial(self, run_id: str, reason: str) -> None:
        self._end(run_id, S.STATUS_FAILED, reason)

    def kill_trial(self, run_id: str, reason: str) -> None:
        """Marks a run KILLED: stopped from outside (a signal), not failed; the next invocation resumes it."""
        self._end(run_id, S.STATUS_KILLED, reason)

    def _end(self, run_id: str, status: str, reason: str) -> None:
        self.client.set_tag(run_id, S.TAG_ERROR, reason[:4900])
        self.client.set_terminated(run_id, status)


def _identity(dataset_input: DatasetInput) -> tuple[str, str]:
    """What makes two dataset inputs one (as MLflow's stores see it): the dataset's name and digest."""
    return dataset_input.dataset.name, dataset_input.dataset.digest


_NO_FOLDER = (TrialState.REUSED, TrialState.CACHED)  # trials that train nowhere: no folder of a generation


def rerun_tag(keys: list[str]) -> str:
    """The experiment tag of a ``--rerun`` of the trials ``keys`` by this code: ``ean.rerun.<digest>``, so reruns
    of other rows, seeds or code (``--rows``, ``--seeds``) go on and end apart."""
    digest = hashlib.sha256("\n".join([digests.code_digest(), *sorted(keys)]).encode()).hexdigest()[:16]
    return f"{S.RERUN_PREFIX}{digest}"


def _ended(run: Any) -> int:
    """When ``run`` ended (Unix ms; a reopened run keeps the start of its first attempt, so not that)."""
    return run.info.end_time or run.info.start_time or 0


def _finished(runs: list[Any]) -> list[Any]:
    return [r for r in runs if r.info.status == S.STATUS_FINISHED]


def _reusable(candidates: list[Any], trial: Trial, training: Any | None) -> Any | None:
    """The run of another study to reuse for ``trial`` among ``candidates`` (``finished_elsewhere``'s order): the
    first; for an evaluation, the first that tested the checkpoint ``training`` holds. Past the first, only a run
    that names the checkpoint it tested (``ean.evaluated_checkpoint``) is judged: an older run's start time says
    nothing of a training in another study."""
    for i, run in enumerate(candidates):
        if i and trial.evaluates and S.TAG_EVALUATED_CHECKPOINT not in run.data.tags:
            continue
        if not _evaluated_another(run, trial, training):
            return run
    return None


def _evaluated_another(run: Any, trial: Trial, training: Any | None) -> bool:
    """Whether ``run``, a FINISHED run of an evaluation trial (this study's, or another's it would reuse), tested
    another checkpoint than ``training`` holds, the FINISHED run of its training this study uses (None: it has
    none, e.g. the training was trained again since and has not finished): judged by the checkpoint path it
    evaluated, else (a run older than that tag) by its start before the training's end. False for a trial that
    evaluates nothing."""
    if not trial.evaluates:
        return False
    if training is None:
        return True
    evaluated = run.data.tags.get(S.TAG_EVALUATED_CHECKPOINT)
    trained_until = training.info.end_time or 0
    if evaluated is None:
        return (run.info.start_time or 0) < trained_until
    if evaluated != training.data.tags.get(S.TAG_CHECKPOINT):
        return True
    # the same path: a training run again in the same folder (its run and folder deleted by hand) ended after this
    # evaluation ended (its end: a resumed evaluation keeps its first start); a reused run's times are its copy's,
    # so only two runs trained here are compared
    copies = S.TAG_REUSED_FROM in run.data.tags or S.TAG_REUSED_FROM in training.data.tags
    return (run.info.end_time or 0) < trained_until and not copies


def count_metrics(counts: ModelCounts) -> dict[str, int]:
    """The network's counts as the run's metrics: ``params`` and ``flops`` (its MACs)."""
    return {S.METRIC_PARAMS: counts.params, S.METRIC_FLOPS: counts.macs}
