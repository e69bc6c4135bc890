"""MLflow -> a tidy DataFrame: one row per trial run of a study, with its tags, status and final metrics.

Reads any tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``, ...) through ``MlflowClient``;
never writes. The column names are ``RUN_COLUMNS``; see ``study.mlflow_schema`` for what the runner logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from study import mlflow_schema as S
from study.mlflow_search import all_experiments, all_runs
from study.tracking_check import check_tracking_uri, missing_sqlite_store

if TYPE_CHECKING:  # MLflow is imported where the store is read: a report from kept reads needs none
    from mlflow.entities import Run

#: Columns of the tidy runs table, in order.
RUN_COLUMNS = (
    "run_id",
    "parent_run_id",
    "study",
    "row",
    "row_label",
    "seed",
    "status",
    "trial_key",
    "git_commit",
    "code_version",
    "data_fingerprint",
    "dataset",
    "column",
    "protocol",
    "num_classes",
    "error",
    "superseded_by",
    "checkpoint",
    "evaluates",
    "evaluated_checkpoint",
    "ensemble_of",
    "reused_from",
    "start_time",
    "end_time",
    *S.FINAL_METRICS,
)

_TAG_COLUMNS = {
    "parent_run_id": S.TAG_PARENT_RUN_ID,
    "study": S.TAG_STUDY,
    "row": S.TAG_ROW,
    "row_label": S.TAG_ROW_LABEL,
    "trial_key": S.TAG_TRIAL_KEY,
    "git_commit": S.TAG_GIT_COMMIT,
    "code_version": S.TAG_CODE_VERSION,
    "data_fingerprint": S.TAG_DATA_FINGERPRINT,
    "dataset": S.TAG_DATASET,
    "column": S.TAG_COLUMN,
    "protocol": S.TAG_PROTOCOL,
    "error": S.TAG_ERROR,
    "superseded_by": S.TAG_SUPERSEDED_BY,
    "checkpoint": S.TAG_CHECKPOINT,
    "evaluates": S.TAG_EVALUATES,
    "evaluated_checkpoint": S.TAG_EVALUATED_CHECKPOINT,
    "ensemble_of": S.TAG_ENSEMBLE_OF,
    "reused_from": S.TAG_REUSED_FROM,
}


class StudyNotFoundError(LookupError):
    """The tracking store has no experiment named after the study."""


@dataclass(frozen=True)
class StudyRuns:
    """What MLflow holds about one study.

    Attributes:
        trials: the tidy runs table (``RUN_COLUMNS``), one row per trial run, oldest first.
        study_hashes: ``ean.study_hash`` of each study (parent) run, by parent run id.
        experiment_id: the MLflow experiment's id.
    """

    trials: pd.DataFrame
    study_hashes: dict[str, str]
    experiment_id: str


def collect_runs(study: str, tracking_uri: str | None = None) -> StudyRuns:
    """Reads every trial run and study run of ``study`` from MLflow.

    Args:
        study: the study's name (= the MLflow experiment name).
        tracking_uri: any MLflow tracking URI; ``None`` uses MLflow's default (``MLFLOW_TRACKING_URI``).

    Returns:
        The study's runs.

    Raises:
        StudyNotFoundError: there is no experiment named ``study`` at that URI.
    """
    return study_runs(read_runs(study, tracking_uri))


def read_runs(study: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """What ``collect_runs`` reads, as plain data (JSON: what a caller may keep while the store is unchanged,
    ``runners.store_reads``): ``records`` (one dict per trial run, keyed by ``RUN_COLUMNS``; times in Unix ms),
    ``study_hashes`` and ``experiment_id`` (as in ``StudyRuns``).

    Raises:
        StudyNotFoundError: there is no experiment named ``study`` at that URI.
    """
    from mlflow.tracking import MlflowClient

    _check_sqlite_exists(tracking_uri)
    if tracking_uri:
        check_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        found = all_experiments(client)
        names = sorted(e.name for e in found if not S.is_lock_experiment(e.name))[:50]
        raise StudyNotFoundError(
            f"no MLflow experiment named {study!r} at {client.tracking_uri!r} "
            f"(experiments there: {', '.join(names) or 'none'}); run the study first or pass its tracking URI"
        )
    records = [_run_record(r) for r in all_runs(client, [experiment.experiment_id], S.trial_filter(study))]
    parents = all_runs(client, [experiment.experiment_id], S.study_filter(study))
    hashes = {r.info.run_id: r.data.tags.get(S.TAG_STUDY_HASH, "") for r in parents}
    return {"records": records, "study_hashes": hashes, "experiment_id": experiment.experiment_id}


def study_runs(read: dict[str, Any]) -> StudyRuns:
    """The study's runs from what ``read_runs`` read."""
    return StudyRuns(runs_frame(read["records"]), dict(read["study_hashes"]), read["experiment_id"])


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """Builds the tidy runs table from run records (dicts keyed by ``RUN_COLUMNS``), oldest run first."""
    frame = pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))
    frame["seed"] = frame["seed"].astype("Int64")
    frame["num_classes"] = frame["num_classes"].astype("Int64")
    for col in S.FINAL_METRICS:
        frame[col] = frame[col].astype("float64")
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
    return frame.sort_values(["start_time", "run_id"], kind="stable").reset_index(drop=True)


def _check_sqlite_exists(tracking_uri: str | None) -> None:
    """Refuses a sqlite URI whose file does not exist (MLflow would create an empty store there)."""
    path = missing_sqlite_store(tracking_uri) if tracking_uri else None
    if path is not None:
        raise StudyNotFoundError(f"no MLflow store at {tracking_uri!r} ({Path(path).resolve()} does not exist)")


def _run_record(run: Run) -> dict:
    tags = run.data.tags
    record = {col: tags.get(tag) for col, tag in _TAG_COLUMNS.items()}
    record.update(
        run_id=run.info.run_id,
        seed=_parse_int(tags.get(S.TAG_SEED)),
        num_classes=_parse_int(run.data.params.get(S.PARAM_NUM_CLASSES)),
        status=run.info.status,
        start_time=run.info.start_time,
        end_time=run.info.end_time,
    )
    for metric in S.FINAL_METRICS:
        record[metric] = run.data.metrics.get(metric)
    return record


def _parse_int(value: str | None) -> int | None:
    """An integer tag or parameter (seed, number of classes), or ``None`` when absent or not an integer."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
