"""Reuse across studies: a trial whose key has a FINISHED run in any study is not trained again.

The study gets a run of its own for the cell (named and tagged as if it had trained it) that points at the
source run (``ean.reused_from``) and carries its metrics with their per-epoch history, its per-video scores,
its per-class accuracies and its checkpoint location, so the table, the ensembles and the figures read it
like any trial run.
"""

from __future__ import annotations

import tempfile
from typing import Any

from mlflow.entities import Metric

from study import mlflow_schema as S
from study.mlflow_search import all_experiments, all_runs

#: Tags of the source run that describe this trial's computation (the rest are the source study's own).
CARRIED_TAGS = (
    S.TAG_GIT_COMMIT,
    S.TAG_CODE_VERSION,
    S.TAG_CODE_DIGEST,
    S.TAG_DATASET,
    S.TAG_PROTOCOL,
    S.TAG_CHECKPOINT,
    S.TAG_EVALUATES,
    S.TAG_EVALUATED_CHECKPOINT,
    S.TAG_WORKDIR,
)
CARRIED_ARTIFACTS = (S.ARTIFACT_SCORES, S.ARTIFACT_PER_CLASS)
EXPERIMENTS_PER_SEARCH = 100  # experiments asked at once (MLflow's search_runs takes at most 100)


def finished_elsewhere(client, study: str, keys: set[str]) -> dict[str, list[Any]]:
    """Trial key -> the FINISHED trial runs of other studies with that key, the one to reuse first: originals
    before reuses, each newest first; never one a ``--rerun`` superseded. (An evaluation takes the first that
    tested the checkpoint its training holds here: ``StudyTracker.mark_cached``.)"""
    if not keys:
        return {}
    experiments = [e.experiment_id for e in all_experiments(client)]
    found: dict[str, list[Any]] = {}
    query = f"tags.`{S.TAG_KIND}` = '{S.KIND_TRIAL}' AND attributes.status = '{S.STATUS_FINISHED}'"
    for i in range(0, len(experiments), EXPERIMENTS_PER_SEARCH):
        batch = experiments[i : i + EXPERIMENTS_PER_SEARCH]
        runs = all_runs(client, batch, query, order_by=["attributes.start_time DESC"])
        for run in runs:
            tags = run.data.tags
            key = tags.get(S.TAG_TRIAL_KEY)
            if key in keys and tags.get(S.TAG_STUDY) != study and S.TAG_SUPERSEDED_BY not in tags:
                found.setdefault(key, []).append(run)
    return {key: sorted(runs, key=_reuse_order) for key, runs in found.items()}


def _reuse_order(run) -> tuple[bool, int]:
    """Originals first, then the newest (batches of experiments come newest first only within a batch)."""
    return S.TAG_REUSED_FROM in run.data.tags, -(run.info.start_time or 0)


def carried_tags(source) -> dict[str, str]:
    """The source run's tags that this study's run carries, and the pointers to the source."""
    tags = {k: v for k, v in source.data.tags.items() if k in CARRIED_TAGS}
    origin = source.data.tags.get(S.TAG_REUSED_FROM)
    tags[S.TAG_REUSED_FROM] = origin or source.info.run_id
    tags[S.TAG_REUSED_FROM_NAME] = source.data.tags.get(S.TAG_REUSED_FROM_NAME) or source.info.run_name
    return tags


def copy_metrics(client, source, run_id: str) -> None:
    """Every metric of the source run with its whole history (steps and timestamps kept)."""
    batch = []
    for name in source.data.metrics:
        history = client.get_metric_history(source.info.run_id, name)
        batch += [Metric(m.key, m.value, m.timestamp, m.step) for m in history]
    for i in range(0, len(batch), 1000):
        client.log_batch(run_id, metrics=batch[i : i + 1000])


def copy_artifacts(client, source, run_id: str) -> None:
    """The source run's per-video scores and per-class accuracies, where it has them."""
    present = {f.path for f in client.list_artifacts(source.info.run_id)}
    present |= {f.path for f in client.list_artifacts(source.info.run_id, "scores")}
    with tempfile.TemporaryDirectory() as tmp:
        for path in CARRIED_ARTIFACTS:
            if path in present:
                local = client.download_artifacts(source.info.run_id, path, tmp)
                folder = path.rpartition("/")[0] or None
                client.log_artifact(run_id, local, artifact_path=folder)
