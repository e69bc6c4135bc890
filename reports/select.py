"""Which runs make up a table: runs that belong together, and one run per (row, seed).

Runs are only compared when they share the spec's evaluation protocol, the dataset, the data it was read as
(its fingerprint: the annotations and videos a trial trained and tested on) and the code version. The dataset,
fingerprint and code version are those of the group with the most FINISHED runs (ties: the newest run) unless
the caller pins them. Every run left out is listed with the reason, so nothing is dropped silently;
the only runs left out without a word are older FAILED/KILLED/RUNNING attempts of a (row, seed) that a
later choice supersedes, and FINISHED runs a ``--rerun`` superseded (tag ``ean.superseded_by`` naming a
FINISHED run that is there); a newer attempt that did not finish (a failed ``--rerun``) is named, its cell
showing the older result. For each (row, seed) the newest FINISHED run is chosen; if none finished, the
newest run of any status (it marks the cell as failed, running or killed). Other older FINISHED runs of a
(row, seed) should not exist; where they do, they are left out of the table but listed in
``Selection.duplicates`` (``describe_duplicates`` words them for the table's notes). A FINISHED run of an
evaluation row that tested another checkpoint than the one of its training's run in the table (the training
was trained again since and the new evaluation has not run), or of a training with no FINISHED run in the
table, or of another configuration of it, is left out, named: its number is not the row's; so is an ensemble
row's run that averaged other member runs than those the table shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from study import mlflow_schema as S
from study.spec import StudySpec


@dataclass(frozen=True)
class Duplicate:
    """Several FINISHED runs of one (row, seed): the newest is chosen, the others are left out.

    Attributes:
        row: the row id.
        seed: the seed.
        chosen: the run id of the chosen (newest FINISHED) run.
        others: the run ids of the other FINISHED runs, oldest first.
        configurations: how many trial keys they have among them (more than one: other configurations, e.g. a
            command-line override, that a table of newest runs mixes).
    """

    row: str
    seed: int
    chosen: str
    others: tuple[str, ...]
    configurations: int = 1


@dataclass(frozen=True)
class Selection:
    """The runs a table is built from.

    Attributes:
        chosen: one run per (row, seed) that has any compatible run; the tidy runs columns, in spec order.
        excluded: runs left out because they do not belong to this table, with a ``reason`` column.
        protocol: the evaluation protocol of the table (clips x crops, e.g. ``"1x1"``).
        dataset: the dataset registry name of the chosen runs (``None`` when there are none).
        code_version: the code version of the chosen runs (``None`` when there are none).
        duplicates: each (row, seed) with more than one compatible FINISHED run, in spec order.
        table_wide: the reasons in ``excluded`` that concern the whole table, not this selection's dataset column
            (a run of no column of the spec).
    """

    chosen: pd.DataFrame
    excluded: pd.DataFrame
    protocol: str
    dataset: str | None
    code_version: str | None
    duplicates: tuple[Duplicate, ...] = ()
    table_wide: frozenset[str] = frozenset()

    def run(self, row: str, seed: int) -> dict | None:
        """The chosen run of (row, seed) as a dict of the tidy columns, or ``None`` if it has none."""
        hit = self.chosen[(self.chosen["row"] == row) & (self.chosen["seed"] == seed)]
        return None if hit.empty else hit.iloc[0].to_dict()


def select_runs(
    spec: StudySpec,
    trials: pd.DataFrame,
    dataset: str | None = None,
    code_version: str | None = None,
    keys: Mapping[tuple[str, int], str] | None = None,
    data_fingerprint: str | None = None,
) -> Selection:
    """Chooses the runs of a table from all trial runs of its study.

    Args:
        spec: the study spec (rows, seeds, protocol).
        trials: the tidy runs table from ``reports.collect``.
        dataset: keep only runs of this dataset; ``None`` picks the group with the most finished runs.
        code_version: keep only runs of this code version; ``None`` picks as for ``dataset``.
        data_fingerprint: keep only runs on data of this fingerprint; ``None`` picks as for ``dataset``.
        keys: (row, seed) -> the trial key an invocation planned for it (the driver's report): only runs of
            that key fill the cell, so runs of another configuration (a command-line override, another code
            version) are left out, listed; a (row, seed) not in ``keys`` takes its newest run as without. The
            table's group (dataset, code version, data fingerprint) is then that of the planned cells' runs:
            rows trained again on changed data (``--rows``) show, the others' older runs are named.

    Returns:
        The chosen and the excluded runs, and the (row, seed)s with more than one FINISHED run.
    """
    trials = trials.reset_index(drop=True)
    records = _not_superseded([{**rec, "_index": i} for i, rec in enumerate(trials.to_dict("records"))])
    excluded: list[tuple[int, str]] = []
    candidates = []
    for rec in records:
        reason = _spec_mismatch(spec, rec) or _key_mismatch(rec, keys or {})
        (excluded.append((rec["_index"], reason)) if reason else candidates.append(rec))
    planned = [  # the planned cells' finished runs decide the group
        r for r in candidates if (r["row"], int(r["seed"])) in (keys or {}) and r["status"] == S.STATUS_FINISHED
    ]
    group = _main_group(planned or candidates, dataset, code_version, data_fingerprint)
    compatible = []
    for rec in candidates:
        reason = _group_mismatch(rec, group)
        (excluded.append((rec["_index"], reason)) if reason else compatible.append(rec))
    stale = _stale_evaluations(spec, compatible) | _stale_ensembles(spec, compatible)
    excluded += stale.items()
    compatible = [rec for rec in compatible if rec["_index"] not in stale]
    excluded += _newer_unfinished(compatible)
    excluded.sort()
    return Selection(
        chosen=trials.loc[_newest_per_trial(spec, compatible)].reset_index(drop=True),
        excluded=trials.loc[[i for i, _ in excluded]].assign(reason=[r for _, r in excluded]).reset_index(drop=True),
        protocol=spec.protocol.tag,
        dataset=group[0] if compatible else dataset,
        code_version=group[1] if compatible else code_version,
        duplicates=_duplicates(spec, compatible),
    )


def describe_exclusions(selection: Selection, labels: dict[str, str], table_wide: bool | None = None) -> list[str]:
    """One sentence per reason, naming the runs, e.g. ``"protocol 10x3 (this table: 1x1): +EAB seed 0"``.

    Args:
        selection: the selection.
        labels: printed label by row id (rows not in the spec are named by their id).
        table_wide: only the reasons about the whole table (True), only the others (False), or all (None).
    """
    lines = []
    ex = selection.excluded
    for reason in dict.fromkeys(ex["reason"]):
        if table_wide is not None and (reason in selection.table_wide) is not table_wide:
            continue
        runs = ex[ex["reason"] == reason]
        names = [_run_label(r, labels) for r in runs.to_dict("records")]
        count = f"{len(names)} run{'s' if len(names) != 1 else ''}"
        lines.append(f"{count} of {reason}: {', '.join(names)}")
    return lines


def describe_duplicates(selection: Selection, labels: dict[str, str]) -> list[str]:
    """One sentence per (row, seed) with several FINISHED runs, naming the runs by their MLflow run ids.

    E.g. ``"2 FINISHED runs of +EAB seed 0: the newest (run 1f0c...) is shown; also 9a2b..."``.

    Args:
        selection: the selection.
        labels: printed label by row id (rows not in the spec are named by their id).
    """
    return [
        f"{len(d.others) + 1} FINISHED runs of {labels.get(d.row, d.row)} seed {d.seed}: "
        f"the newest (run {d.chosen}) is shown; also {', '.join(d.others)}" + _configurations(d)
        for d in selection.duplicates
    ]


def _configurations(duplicate: Duplicate) -> str:
    if duplicate.configurations < 2:
        return ""
    return (
        f" ({duplicate.configurations} configurations: their trial keys differ, e.g. a command-line override; "
        "the table the study's own command prints, python -m runners.run STUDY, shows the spec's)"
    )


def describe_test_videos(selection: Selection, labels: dict[str, str]) -> list[str]:
    """One sentence when the chosen FINISHED runs scored different numbers of test videos (a bad file is
    skipped, so their top-1 have different denominators), naming the runs outside the most common count.

    E.g. ``"Test videos scored: 11522 by 14 runs, 11520 by +EAB seed 2 (a bad file is skipped, not counted
    wrong)"``; none when every run scored as many, or the runs do not say (older than ``test_videos``).
    """
    chosen = selection.chosen
    if S.METRIC_TEST_VIDEOS not in chosen:
        return []
    runs = chosen[(chosen["status"] == S.STATUS_FINISHED) & chosen[S.METRIC_TEST_VIDEOS].notna()]
    counts = runs[S.METRIC_TEST_VIDEOS].astype(int)
    if counts.nunique() < 2:
        return []
    common = counts.value_counts().index[0]
    parts = [f"{common} by {int((counts == common).sum())} runs"]
    for count in sorted(set(counts) - {common}, reverse=True):
        named = [f"{labels.get(r['row'], r['row'])} seed {r['seed']}" for r in runs[counts == count].to_dict("records")]
        parts.append(f"{count} by {', '.join(named)}")
    return [f"Test videos scored: {'; '.join(parts)} (a bad file is skipped, not counted wrong)"]


def _run_label(rec: dict, labels: dict[str, str]) -> str:
    seed = rec["seed"]
    seed_text = f"seed {seed}" if not pd.isna(seed) else "no seed"
    return f"{labels.get(rec['row'], rec['row'])} {seed_text} ({rec['status']})"


def _not_superseded(records: list[dict]) -> list[dict]:
    """The records less the FINISHED runs a ``--rerun`` superseded by a FINISHED run that is among them."""
    finished = {rec["run_id"] for rec in records if rec["status"] == S.STATUS_FINISHED}
    return [rec for rec in records if not (rec["run_id"] in finished and rec.get("superseded_by") in finished)]


def _spec_mismatch(spec: StudySpec, rec: dict) -> str | None:
    if rec["row"] not in spec.row_ids:
        return f"row {rec['row']!r}, which is not in the spec"
    if pd.isna(rec["seed"]) or int(rec["seed"]) not in spec.seeds:
        return f"a seed not among this table's seeds {list(spec.seeds)}"
    row = spec.row(rec["row"])
    wanted, where = (row.protocol.tag, "this row") if row.protocol else (spec.protocol.tag, "this table")
    if rec["protocol"] != wanted:
        return f"protocol {tag_text(rec['protocol'])} ({where}: {wanted}, clips x crops)"
    return None


def _key_mismatch(rec: dict, keys: Mapping[tuple[str, int], str]) -> str | None:
    planned = keys.get((rec["row"], int(rec["seed"])))
    if planned is None or rec["trial_key"] == planned:
        return None
    return "a configuration this invocation did not plan (another trial key)"


def _main_group(
    records: list[dict], dataset: str | None, code_version: str | None, fingerprint: str | None = None
) -> tuple:
    """(dataset, code_version, data fingerprint) of the table: pinned values, else those of the group with the
    most finished runs."""
    pinned = (dataset, code_version, fingerprint)
    pool = [r for r in records if all(p is None or p == v for p, v in zip(pinned, _group_of(r), strict=True))]
    if not pool:
        return pinned
    finished = Counter(_group_of(r) for r in pool if r["status"] == S.STATUS_FINISHED)
    newest = {}
    for r in pool:  # records are oldest first, so the last one seen is the newest
        newest[_group_of(r)] = r["start_time"]
    return max(newest, key=lambda g: (finished[g], newest[g]))


def _group_of(rec: dict) -> tuple:
    """(dataset, code_version, data fingerprint) of a run; a missing fingerprint (a run older than the tag) None."""
    fingerprint = rec.get("data_fingerprint")
    return rec["dataset"], rec["code_version"], None if tag_text(fingerprint) == "(untagged)" else fingerprint


def _group_mismatch(rec: dict, group: tuple) -> str | None:
    dataset, code_version, fingerprint = group
    if rec["dataset"] != dataset:
        return f"dataset {tag_text(rec['dataset'])} (this table: {tag_text(dataset)})"
    if rec["code_version"] != code_version:
        return f"code version {tag_text(rec['code_version'])} (this table: {tag_text(code_version)})"
    if _group_of(rec)[2] != fingerprint:
        return (
            f"data fingerprint {tag_text(rec.get('data_fingerprint'))} (this table: {tag_text(fingerprint)}): trained "
            "or tested on other data (its annotations or videos changed)"
        )
    return None


def _newest_per_trial(spec: StudySpec, records: list[dict]) -> list[int]:
    """Indices of the chosen run of each (row, seed), in spec order."""
    chosen = _chosen(records)
    return [chosen[(r, s)]["_index"] for r in spec.row_ids for s in spec.seeds if (r, s) in chosen]


def _chosen(records: list[dict]) -> dict[tuple[str, int], dict]:
    """The chosen run of each (row, seed): its newest FINISHED run, else its newest run."""
    chosen = {}
    for rec in records:  # oldest first: a later run replaces an earlier one unless that one finished
        key = (rec["row"], int(rec["seed"]))
        held = chosen.get(key)
        if held is None or rec["status"] == S.STATUS_FINISHED or held["status"] != S.STATUS_FINISHED:
            chosen[key] = rec
    return chosen


def _newer_unfinished(records: list[dict]) -> list[tuple[int, str]]:
    """The attempts of a (row, seed) newer than its chosen FINISHED run that did not finish (a ``--rerun`` that
    failed, was stopped or is running): its cell shows the older result, said so (index, reason)."""
    chosen = _chosen(records)
    return [
        (rec["_index"], "a newer attempt that has not FINISHED (the table shows the older FINISHED run)")
        for rec in records
        if rec["status"] != S.STATUS_FINISHED
        and (held := chosen[(rec["row"], int(rec["seed"]))])["status"] == S.STATUS_FINISHED
        and rec["_index"] > held["_index"]
    ]


def _stale_evaluations(spec: StudySpec, records: list[dict]) -> dict[int, str]:
    """The FINISHED runs of evaluation rows (``evaluate``) that did not test the checkpoint of the training run
    the table shows for the same seed: index -> reason. As the runner judges them
    (``runners.tracking.StudyTracker.mark_cached``, which evaluates such a trial again): the training has no
    FINISHED run here, or the evaluation tested another checkpoint (by the path each run names; a run older than
    the ``ean.evaluated_checkpoint`` tag by its start before the training's end)."""
    chosen = _chosen(records)
    stale = {}
    for rec in records:
        row = spec.row(rec["row"])
        if not row.evaluate or rec["status"] != S.STATUS_FINISHED:
            continue
        training = chosen.get((row.evaluate, int(rec["seed"])))
        if training is None or training["status"] != S.STATUS_FINISHED:
            stale[rec["_index"]] = f"an evaluation of row {row.evaluate!r}, which has no FINISHED run in this table"
        elif isinstance(rec.get("evaluates"), str) and rec["evaluates"] != training.get("trial_key"):
            stale[rec["_index"]] = (
                f"an evaluation of another configuration of row {row.evaluate!r} (another trial key) than its run "
                "in this table"
            )
        elif _tested_another(rec, training):
            stale[rec["_index"]] = (
                f"an evaluation of another checkpoint of row {row.evaluate!r} than its run in this table (trained "
                "again since; the study's command evaluates the new one)"
            )
    return stale


def _stale_ensembles(spec: StudySpec, records: list[dict]) -> dict[int, str]:
    """The FINISHED runs of ensemble rows that did not average the FINISHED runs the table shows for their members
    at the same seed: index -> reason. As the runner judges them (``runners.ensembles.run_ensembles`` averages
    such a cell again, or waits while a member has no FINISHED run): a member trained again since (the new
    average not made: it waits, or failed), a member with no FINISHED run in the table (one added to the row, or
    failed), or members of another configuration."""
    chosen = _chosen(records)
    by_id = {rec["run_id"]: rec for rec in records}
    stale = {}
    for rec in records:
        row = spec.row(rec["row"])
        if not row.ensemble or rec["status"] != S.STATUS_FINISHED or not isinstance(rec.get("ensemble_of"), str):
            continue
        members = [chosen.get((m, int(rec["seed"]))) for m in row.ensemble]
        averaged = set(filter(None, rec["ensemble_of"].split(",")))
        if any(m is None or m["status"] != S.STATUS_FINISHED for m in members):
            stale[rec["_index"]] = "an average of members of which some have no FINISHED run in this table"
        elif averaged != {m["run_id"] for m in members}:
            keys = {by_id[r]["trial_key"] for r in averaged if r in by_id}
            other = keys and not keys <= {m["trial_key"] for m in members}
            stale[rec["_index"]] = (
                "an average of its members' runs of another configuration (another trial key) than those in this table"
                if other
                else "an average of other runs of its members than those in this table (a member trained again "
                "since; the study's command averages them again)"
            )
    return stale


def _tested_another(evaluation: dict, training: dict) -> bool:
    """As ``runners.tracking._evaluated_another`` judges it: another checkpoint path, or the same path of a
    training run again there that ended after the evaluation ended (two runs trained here; a reused run's times
    are its copy's); a run older than the checkpoint tag by its start."""
    end = training.get("end_time")

    def before_its_end(time) -> bool:
        return not pd.isna(time) and not pd.isna(end) and time < end

    evaluated = evaluation.get("evaluated_checkpoint")
    if not isinstance(evaluated, str):
        return before_its_end(evaluation.get("start_time"))
    if evaluated != training.get("checkpoint"):
        return True
    copies = any(isinstance(r.get("reused_from"), str) and r.get("reused_from") for r in (evaluation, training))
    return before_its_end(evaluation.get("end_time")) and not copies


def _duplicates(spec: StudySpec, records: list[dict]) -> tuple[Duplicate, ...]:
    """The (row, seed)s with more than one FINISHED run, in spec order; the newest is the chosen one."""
    finished: dict[tuple, list[dict]] = {}
    for rec in records:  # oldest first, as in _newest_per_trial
        if rec["status"] == S.STATUS_FINISHED:
            finished.setdefault((rec["row"], int(rec["seed"])), []).append(rec)
    return tuple(
        Duplicate(r, s, runs[-1]["run_id"], tuple(x["run_id"] for x in runs[:-1]), len({x["trial_key"] for x in runs}))
        for r in spec.row_ids
        for s in spec.seeds
        if len(runs := finished.get((r, s), [])) > 1
    )


def tag_text(value) -> str:
    """A tag value for a message; a missing tag reads "(untagged)"."""
    return "(untagged)" if value is None or (isinstance(value, float) and pd.isna(value)) or value == "" else str(value)
