"""Ensemble rows (the paper's "En"): per seed, the average of the member rows' per-video softmax scores.

An ensemble cell trains nothing. Once every member trial of a seed has a FINISHED run, the driver fetches
their score files from MLflow, averages them (``ean.train.ensemble``) and logs one run for the cell, keyed
by its members' trial keys (cached like any trial). The members are the trials this invocation planned (their
keys: this code version, data and recipe), never another key's run of the same row and seed, such as one an
older code version left in the store. Params and FLOPs are the members' sums; its data input is the members'
validation split (context ``evaluation``).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from study import mlflow_schema as S
from study.spec import StudySpec

if TYPE_CHECKING:  # MLflow is imported only where an ensemble is logged: a table's cell keys need none
    from runners.tracking import StudyTracker


#: How ``ean.train.ensemble`` combines the members; in the key of every ensemble cell (0.4.3 averaged their
#: probabilities before, under keys of the members alone).
ENSEMBLE_RULE = "mean log-probability: ranks as the sum of the members' logits"


def ensemble_key(member_keys: list[str]) -> str:
    """The key of an ensemble cell: its members' keys and how they are combined (``ENSEMBLE_RULE``)."""
    return "en" + hashlib.sha256(f"{','.join(member_keys)}|{ENSEMBLE_RULE}".encode()).hexdigest()[:14]


def cell_keys(spec: StudySpec, planned: dict[tuple[str, str, int], str]) -> dict[tuple[str, str, int], str]:
    """``planned`` (row id, dataset column or "", seed -> trial key) with the key of each ensemble cell whose
    members are all planned (``ensemble_key`` of theirs): the key of every cell this invocation computes."""
    cells = dict(planned)
    for row in spec.rows:
        for column, seed in {(c, s) for (_, c, s) in planned}:
            members = [planned.get((m, column, seed)) for m in row.ensemble or ()]
            if members and all(members):
                cells[(row.id, column, seed)] = ensemble_key(members)
    return cells


def run_ensembles(spec: StudySpec, planned: dict[tuple[str, str, int], str], tracker: StudyTracker) -> dict[str, str]:
    """Logs every ensemble cell whose members finished; returns ``name -> finished | cached | waiting`` or
    ``failed: REASON`` (its members' scores cannot be averaged or fetched; the other cells go on).

    A cell is cached while its run averaged the members' current runs, ``--rerun`` or not (a rerun trains the
    members again, which makes new runs); once a member is trained again, the cell is averaged again and its old
    run superseded.

    Args:
        spec: the study (its ensemble rows name their members).
        planned: (row id, dataset column or "", seed) -> the trial key this invocation planned for it.
        tracker: the study's MLflow tracker.
    """
    from mlflow.exceptions import MlflowException

    from ean.train import ensemble
    from ean.train.ensemble import EnsembleError

    outcome: dict[str, str] = {}
    runs = tracker.trial_runs()
    seeds = sorted({seed for _, _, seed in planned})
    cells = [
        (row, column, seed) for row in spec.rows if row.ensemble for column in spec.columns_of_data for seed in seeds
    ]
    for row, column, seed in cells:
        name = S.run_name(spec.name, row.id, seed, column)
        members = [_member_run(runs, planned.get((m, column, seed))) for m in row.ensemble]
        if any(m is None for m in members):
            outcome[name] = "waiting"
            continue
        key = ensemble_key([m.data.tags[S.TAG_TRIAL_KEY] for m in members])
        done = current(runs.get(key, []))
        if any(_averaged(r) == {m.info.run_id for m in members} for r in done):
            outcome[name] = "cached"
            continue
        with tempfile.TemporaryDirectory() as tmp:
            files: list[str] = []
            try:
                files += _scores(tracker, members, row.ensemble, tmp)
                result = ensemble(files, out=Path(tmp) / "val_scores.npz")
            except (EnsembleError, MlflowException, OSError) as err:
                reason = str(err)
                for path, member, member_row in zip(files, members, row.ensemble, strict=False):
                    reason = reason.replace(path, f"row {member_row} (run {member.info.run_id})")  # not a temp path
                outcome[name] = f"failed: {reason}"
                continue
            run_id = _log(tracker, spec, row, seed, column, key, members, result)
        for old in done:  # a --rerun, or a member trained again: the earlier runs stay FINISHED, superseded
            tracker.client.set_tag(old.info.run_id, S.TAG_SUPERSEDED_BY, run_id)
        outcome[name] = "finished"
    return outcome


def _averaged(run) -> set[str]:
    """The member runs an ensemble run averaged (its ``ean.ensemble_of``)."""
    return set(filter(None, run.data.tags.get(S.TAG_ENSEMBLE_OF, "").split(",")))


def _scores(tracker: StudyTracker, members: list, rows: list[str], folder: str) -> list[str]:
    """Downloads each member run's score file into ``folder``; a member without one raises ``EnsembleError``
    naming its row and run."""
    from mlflow.exceptions import MlflowException

    from ean.train.ensemble import EnsembleError

    files = []
    for i, (member, row) in enumerate(zip(members, rows, strict=True)):
        where = f"row {row}, run {member.info.run_id}"
        try:
            files.append(tracker.client.download_artifacts(member.info.run_id, S.ARTIFACT_SCORES, f"{folder}/{i}"))
        except MlflowException as err:
            raise EnsembleError(f"{where} has no {S.ARTIFACT_SCORES} in MLflow ({err.error_code})") from None
    return files


def _member_run(runs: dict[str, list], key: str | None):
    """The newest FINISHED run of trial ``key`` that no rerun superseded (None: none, or no key planned)."""
    found = current(runs.get(key, [])) if key else []
    return found[0] if found else None


def current(runs: list) -> list:
    """The FINISHED runs among ``runs`` that no ``--rerun`` superseded, in their order."""
    return [r for r in runs if r.info.status == S.STATUS_FINISHED and S.TAG_SUPERSEDED_BY not in r.data.tags]


def _log(
    tracker: StudyTracker, spec: StudySpec, row, seed: int, column: str, key: str, members: list, result: dict
) -> str:
    """Logs one ensemble cell as a FINISHED run; returns its id."""
    first = members[0].data
    client = tracker.client
    tags = {
        **tracker.system_tags,
        S.TAG_PARENT_RUN_ID: tracker.parent_id or first.tags.get(S.TAG_PARENT_RUN_ID, ""),
        S.TAG_KIND: S.KIND_TRIAL,
        S.TAG_STUDY: spec.name,
        S.TAG_ROW: row.id,
        S.TAG_ROW_LABEL: row.label,
        S.TAG_SEED: str(seed),
        S.TAG_TRIAL_KEY: key,
        S.TAG_ENSEMBLE_OF: ",".join(m.info.run_id for m in members),
        **({S.TAG_COLUMN: column} if column else {}),
    }
    carried = (S.TAG_GIT_COMMIT, S.TAG_CODE_VERSION, S.TAG_CODE_DIGEST, S.TAG_DATA_FINGERPRINT, S.TAG_DATASET)
    for tag in (*carried, S.TAG_PROTOCOL):
        tags[tag] = first.tags.get(tag, "")
    run = client.create_run(tracker.experiment_id, run_name=S.run_name(spec.name, row.id, seed, column), tags=tags)
    counted = [m for m in (S.METRIC_PARAMS, S.METRIC_FLOPS) if all(m in r.data.metrics for r in members)]
    sums = {m: sum(r.data.metrics[m] for r in members) for m in counted}  # a member without its count: none
    scored = {S.METRIC_TOP1: result["top1"], S.METRIC_TOP5: result["top5"], S.METRIC_TEST_VIDEOS: result["num_videos"]}
    tracker.log_metrics(run.info.run_id, {**scored, **sums})
    client.log_artifact(run.info.run_id, result["scores_path"], artifact_path=str(Path(S.ARTIFACT_SCORES).parent))
    client.log_dict(run.info.run_id, result.get("per_class_top1", {}), S.ARTIFACT_PER_CLASS)
    data = {"dataset": first.tags.get(S.TAG_DATASET), "root": first.params.get(S.PARAM_DATA_ROOT)}
    tracker.log_data(run.info.run_id, {"data": data}, first.tags.get(S.TAG_DATA_FINGERPRINT, ""), evaluation=True)
    client.set_terminated(run.info.run_id, S.STATUS_FINISHED)
    return run.info.run_id
