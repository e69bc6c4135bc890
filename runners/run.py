"""``python -m runners.run STUDY.yaml [overrides ...]``: plan a study, run its new trials on Ray, log to MLflow.

Every (row, seed) of the spec becomes a trial composed with Hydra from ``studies/conf`` (and the folders of
``--config-dir`` and of installed plugins, ``runners.conf_dirs.search_path``); all of them are checked before
anything starts (exit 2 naming file, row, value and the valid choices). Trials with a FINISHED run in MLflow
are cached; the others run on a local Ray (or ``--address``), retried from their last checkpoint when they
crash. At the end the study's table is printed and written (``reports.make``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from ean.command_name import command_name
from ean.files_write import folder_problem
from ean.plugins import load_plugins, plugin_entry_points
from ean.registry import RegistryError
from runners import signals
from runners.claims import held_by
from runners.conf_dirs import CompositionError, search_path, use_config_dirs
from runners.lease import LeaseHeld
from runners.local_ray import RayUnreachable, cluster_problem
from runners.plan_cache import PlanCache
from runners.process_exit import exit_now
from runners.session import (
    EXIT_BAD_INPUT,
    EXIT_FAILED_TRIALS,
    EXIT_OK,
    EXIT_STORE_DOWN,
    EXIT_WAITING,
    StudySession,
    fresh_store,
)
from runners.signals import Stopped
from runners.trials import PlanError, Trial, TrialState, count_trials, plan_json
from study.find import find_spec
from study.mlflow_schema import default_tracking_uri
from study.policy import override_problem
from study.profiles import profile_overrides
from study.spec import SpecError, StudySpec, load_spec, spec_hash
from study.tracking_check import TrackingUnreachable, check_tracking_uri

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED_TRIALS", "EXIT_OK", "EXIT_STORE_DOWN", "EXIT_WAITING", "main", "plan_json"]
#: How long the end of a study waits for MLflow to take the writes still buffered.
FLUSH_WAIT_S = 60.0
#: How often ``--wait`` looks again at trials other drivers run.
WAIT_S = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=command_name("python -m runners.run"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  python -m runners.run studies/table8.yaml --profile smoke      # synthetic data, minutes on a CPU\n"
        "  python -m runners.run studies/table8.yaml --dry-run            # the plan: trials, keys, cached?\n"
        "  python -m runners.run table8 data.root=/data/sth1 --address auto --mlflow-uri http://head:5000\n"
        "\nExit status: 0 all trials finished; 1 a trial failed; 2 bad input, another driver runs the study, or\n"
        "MLflow does not answer; 3 MLflow stopped answering mid-study (its writes wait on disk for the next run);\n"
        "4 trials left to another study's driver that runs them now (the same command, later, reuses them; --wait\n"
        "waits for them instead);\n"
        "130 / 143 stopped by SIGINT / SIGTERM (the same command resumes).\n",
    )
    parser.add_argument(
        "study",
        help="a study spec file, or a study's name, looked for as ./NAME.yaml, ./studies/NAME.yaml, then among the "
        "project's studies (table8)",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every trial, e.g. trainer.epochs=10")
    parser.add_argument(
        "--profile", help="a named override set: studies/profiles/NAME.yaml, refined by the spec (e.g. smoke)"
    )
    parser.add_argument(
        "--config-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of your own config groups (DIR/block/my_block.yaml -> block=my_block) added to Hydra's search "
        "path after the project's studies/conf; data only, like the project's; may be given several times",
    )
    parser.add_argument("--seeds", help="comma-separated seeds instead of the spec's (e.g. 0,1)")
    parser.add_argument(
        "--rows",
        help="comma-separated row ids to run (default: all); an ensemble row brings its member rows, an "
        "evaluation row its trained row, a trained row the rows that evaluate it",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit; nothing runs or is logged")
    parser.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON, one entry per trial")
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="with --dry-run: time a training step of each network on this machine's device and print what the "
        "study will cost (device-hours per row and in all, and the wall clock on this machine's CPUs and GPUs, "
        "or with --address on --max-concurrent trials at once; cached and reused trials are free; with --json, "
        "on stderr)",
    )
    parser.add_argument(
        "--address",
        help="a Ray cluster to join from one of its nodes (auto, or HEAD_IP:6379); default: a local Ray. Not a "
        "Ray Client address (ray://...): submit the driver as a Ray job instead (README, 'On a cluster')",
    )
    parser.add_argument(
        "--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    parser.add_argument(
        "--mlflow-wait",
        type=float,
        default=FLUSH_WAIT_S,
        help="seconds the end of a study waits for an MLflow that stopped answering (its writes are kept on "
        "disk and the next invocation applies them; default: %(default)s)",
    )
    parser.add_argument(
        "--storage", default="runs", help="checkpoints and trial files; shared by all nodes (default: runs)"
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        help="trials at once (default: as many as the cluster holds: its GPUs / GPUs per trial for GPU trials, "
        "its CPUs / CPUs per trial for CPU trials)",
    )
    parser.add_argument(
        "--max-failures",
        type=int,
        default=2,
        help="retries of a crashed trial from its checkpoint (default: 2); an error a retry would meet again (a NaN "
        "loss, bad data or values) fails the trial at once",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="train trials again even when a FINISHED run exists (here or in another study); run again after a "
        "stop, it keeps the trials it already trained again",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="when trials are left to another study's driver that runs them now (exit 4), wait for it instead, "
        "then reuse its results (or run those trials here, should it stop without finishing them) and write the "
        "table",
    )
    parser.add_argument(
        "--wait-every",
        type=float,
        default=WAIT_S,
        metavar="SECONDS",
        help="with --wait: how often it looks again (default: %(default)g)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not build the table at the end")
    return parser.parse_intermixed_args(argv)


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, each alone or together (None when nothing is)."""
    if (args.json or args.estimate) and not args.dry_run:
        flag = "--json" if args.json else "--estimate"
        return f"{flag} goes with --dry-run (it prints the plan; nothing runs): add --dry-run"
    for name, value in (("--seeds", args.seeds), ("--rows", args.rows)):
        if value is not None and not value.strip():
            return f"{name} is empty: give comma-separated values, or leave {name} out for the spec's"
    if args.max_concurrent is not None and args.max_concurrent < 1:
        return f"--max-concurrent must be at least 1, got {args.max_concurrent}"
    if args.max_failures < 0:
        return f"--max-failures must be 0 or more, got {args.max_failures}"
    if not math.isfinite(args.mlflow_wait) or args.mlflow_wait < 0:
        return f"--mlflow-wait must be a number of seconds, 0 or more, got {args.mlflow_wait}"
    if not math.isfinite(args.wait_every) or args.wait_every <= 0:
        return f"--wait-every must be a number of seconds above 0, got {args.wait_every:g}"
    if args.wait and args.dry_run:
        return "--wait goes with a run, not --dry-run (a dry run runs nothing, and waits for nothing)"
    problem = None if args.dry_run else folder_problem(args.storage)
    if problem:
        return f"--storage {args.storage}: {problem}; the trials write their checkpoints and files into a folder"
    return None


def select(spec: StudySpec, args: argparse.Namespace) -> tuple[list[str], list[int], StudySpec]:
    """The profile's overrides, the seeds and the spec restricted to ``--rows``."""
    profile = profile_overrides(spec, args.profile) if args.profile else []
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(spec.seeds)
    except ValueError:
        raise SpecError(f"--seeds must be comma-separated integers, got '{args.seeds}'") from None
    if any(seed < 0 for seed in seeds):
        raise SpecError(f"--seeds must be non-negative integers (as a spec's seeds), got '{args.seeds}'")
    if args.rows:
        wanted = args.rows.split(",")
        unknown = [r for r in wanted if r not in {row.id for row in spec.rows}]
        if unknown:
            raise SpecError(f"unknown rows {unknown}; rows of {spec.name}: {', '.join(r.id for r in spec.rows)}")
        wanted = with_dependencies(spec, set(wanted))
        if all(spec.row(r).reference for r in wanted):
            runs = ", ".join(r.id for r in spec.rows if not r.reference)
            raise SpecError(
                f"--rows {args.rows}: a reference row is published numbers, nothing runs for it; rows that run: {runs}"
            )
        spec = dataclasses.replace(spec, rows=tuple(r for r in spec.rows if r.id in wanted))
    return profile, seeds, spec


def with_dependencies(spec: StudySpec, rows: set[str]) -> set[str]:
    """``rows`` (row ids of ``--rows``) and the rows they go with: an ensemble's members, the trained row an
    evaluation row tests, and the evaluation rows of a trained row (a training run again makes them stale)."""
    while True:
        more = set()
        for row in spec.rows:
            if row.id in rows:
                more |= set(row.ensemble) | ({row.evaluate} if row.evaluate else set())
            elif row.evaluate in rows:
                more.add(row.id)
        if more <= rows:
            return rows
        rows |= more


def plan_study(
    spec: StudySpec, profile: list[str], seeds: list[int], args: argparse.Namespace
) -> tuple[list[Trial], PlanCache]:
    """The study's trials: from the plan cache (``runners.plan_cache``) when nothing planning read has changed,
    else planned (``runners.plan.build_plan``: composed and checked, which imports torch) and kept there."""
    from ean.files_read import recording

    estimating = args.dry_run and args.estimate  # the cost of a study meant for another machine's data
    plan = PlanCache(spec, profile, args.overrides, seeds, Path.cwd(), not estimating, args.profile, search_path())
    trials = plan.load()
    if trials is not None:
        return trials, plan
    from runners.plan import build_plan

    check_overrides(spec, profile, args)
    with recording() as read:
        trials = build_plan(
            spec, profile, args.overrides, seeds, Path.cwd(), require_files=not estimating, profile_name=args.profile
        )
    plan.save(trials, read)
    return trials, plan


def check_command_line(args: argparse.Namespace) -> None:
    """The options (``argument_problem``) and the command line's overrides by the data-only policy (a spec's were
    checked when it was loaded)."""
    problem = argument_problem(args)
    if problem:
        raise SpecError(problem)
    for item in args.overrides:
        if not item.split("=", 1)[0].lstrip("+~"):
            raise SpecError(f"override '{item}' names no key: an override is KEY=VALUE (e.g. trainer.epochs=10)")
        if not item.startswith("~") and "=" not in item:  # a deletion: refused below (override_problem)
            raise SpecError(f"override '{item}' sets no value: an override is KEY=VALUE (e.g. {item}=...)")
        problem = override_problem(item)
        if problem:
            raise SpecError(f"override '{item}' {problem}; overrides choose values only")


def check_overrides(spec: StudySpec, profile: list[str], args: argparse.Namespace) -> None:
    """Before planning: every override of the invocation (spec, profile, rows, command line) for Hydra's sweep
    syntax, which a study refuses (``runners.compose.sweep_problem``), and a study of several datasets for a
    command-line ``data=`` (its columns choose their data)."""
    from runners.compose import sweep_problem

    chosen = [o for o in args.overrides if o.split("=", 1)[0].lstrip("+~") == "data"]
    if spec.datasets and chosen:
        raise SpecError(
            f"override '{chosen[0]}': study '{spec.name}' compares datasets ({', '.join(spec.datasets)}), each column "
            "choosing its own data; set data.KEY=VALUE to change every column, or choose a profile"
        )
    places = [
        ("of the spec", spec.overrides),
        (f"of profile '{args.profile}'", profile),
        *((f"of row '{row.id}'", row.overrides) for row in spec.rows),
        *((f"of dataset '{d}' profile '{p}'", o) for d, refined in spec.datasets.items() for p, o in refined.items()),
        *((f"of row '{r.id}' profile '{p}'", o) for r in spec.rows for p, o in r.profiles.items()),
        ("on the command line", args.overrides),
    ]
    sweeps = [
        f"override '{item}' {where} {problem}"
        for where, overrides in places
        for item in overrides
        if (problem := sweep_problem(item))
    ]
    if sweeps:
        raise SpecError("\n".join(sweeps))


RECIPE_LINE = (
    "global batch {global_batch} = {devices} device(s) x {per_device_batch} clips x {accumulation} accumulated, "
    "lr {lr} ({schedule}{steps}), {epochs} epochs, momentum {momentum}, weight decay {weight_decay} "
    "({param_groups} groups), clip {clip_grad}, dropout {dropout}, pretrained {pretrained}, protocol {protocol}, "
    "precision {precision}"
)


def recipe_lines(trials: list[Trial]) -> list[str]:
    """The recipe once per study (once per distinct recipe where rows differ), with the rows that use it."""
    by_recipe: dict[str, list[str]] = {}
    for t in trials:
        by_recipe.setdefault(json.dumps(t.recipe, sort_keys=True), []).append(t.row.id)
    if len(by_recipe) == 1:
        return ["recipe: " + recipe_line(trials[0].recipe)]
    return [
        f"recipe of {', '.join(dict.fromkeys(rows))}: " + recipe_line(json.loads(r)) for r, rows in by_recipe.items()
    ]


def recipe_line(recipe: dict) -> str:
    """A recipe in one line (``RECIPE_LINE``); the lr steps only under a step schedule, the one that uses them."""
    steps = f", steps {recipe['lr_steps']}" if recipe["schedule"] == "step" else ""
    return RECIPE_LINE.format(**recipe, steps=steps)


def plan_table(trials: list[Trial], claimed: dict[str, str] | None = None) -> str:
    """The plan as a table: each trial's key, state and size; a trial another live driver runs now (``claimed``:
    key -> who) says so, for a run would leave it to that driver."""
    claimed = claimed or {}
    lines = recipe_lines(trials) if trials else []
    lines.append(f"{'trial':40} {'key':16} {'state':7} {'params':>8} {'FLOPs':>8}")
    for t in trials:
        p = f"{t.counts.params / 1e6:.2f}M" if t.counts is not None else "-"
        f = f"{t.counts.macs / 1e9:.2f}G" if t.counts is not None else "-"
        source = f"  reused from {t.source}" if t.state == TrialState.REUSED else ""
        if not t.state.finished and (t.key in claimed or t.evaluates in claimed):
            held = held_by(claimed.get(t.key) or claimed[t.evaluates])
            source = f"  {held}" + (": a run leaves it to that driver" if held.startswith("being run") else "")
        lines.append(f"{t.name:40} {t.key:16} {t.state.value:7} {p:>8} {f:>8}{source}")
    return "\n".join(lines)


def mark_states(spec: StudySpec, trials: list[Trial], args: argparse.Namespace, uri: str):
    """Marks the trials' states for a dry run: from the store's kept reads while it is unchanged
    (``runners.store_reads``; not with ``--rerun`` or ``--estimate``), else from MLflow (then kept). Returns the
    read-only tracker when MLflow was asked (None: the kept reads were used, or there is no store yet, when
    MLflow is not imported) and the note on cached or reused trials computed by other code (or None)."""
    from runners.code_digest import other_code_note
    from runners.store_reads import StoreReads, set_states, states_answer, states_question

    reads = StoreReads(uri)
    question = states_question(spec.name, spec_hash(spec), trials)
    kept = None if args.rerun or args.estimate else reads.get(question)
    if kept is not None:
        set_states(trials, kept)
        return None, other_code_note(kept["other_code"], kept.get("other_digests", []))
    version = reads.version()  # before the reads: a write meanwhile leaves them unused
    if fresh_store(uri):
        return None, None
    from runners.tracking import StudyTracker

    tracker = StudyTracker.read_only(uri, spec.name, spec_hash(spec))
    # with --rerun: the trials an unfinished rerun of this code trained again are cached
    tracker.mark_cached(trials, args.rerun, tracker.rerun_since([t.key for t in trials]) if args.rerun else None)
    if not args.rerun:
        reads.put(question, version, states_answer(tracker, trials, running=tracker.has_running()))
    return tracker, tracker.other_code_note()


PLAN_ERRORS = (SpecError, PlanError, CompositionError, RegistryError)


def keyed_trials(
    spec_path: Path, profile: list[str], seeds: list[int], args: argparse.Namespace, trials: list[Trial]
) -> list[Trial]:
    """The trials whose keys the table's cells show: this invocation's and, with ``--rows``, those of the rows it
    left out, planned with the same profile, overrides and seeds (from the plan cache when it has them), so that
    no cell shows a run of another configuration. A row that cannot be planned here (its files are on another
    machine, say) is named, and its cells show their newest run; the other rows keep their keys."""
    if not args.rows:
        return trials
    spec = load_spec(spec_path)
    try:
        return plan_study(spec, profile, seeds, args)[0]
    except PLAN_ERRORS:
        pass
    keyed = list(trials)
    planned = {t.row.id for t in trials}
    for row in spec.rows:
        if row.id in planned or row.reference:
            continue
        group = with_dependencies(spec, {row.id})
        try:
            more = plan_study(dataclasses.replace(spec, rows=tuple(r for r in spec.rows if r.id in group)),
                              profile, seeds, args)[0]  # fmt: skip
        except PLAN_ERRORS as err:
            print(f"note: row {row.id} cannot be planned here ({err}); its cells show its newest run", file=sys.stderr)
            continue
        keyed += [t for t in more if t.row.id not in planned]
        planned |= {t.row.id for t in more}
    return keyed


def report_folder(
    study: str, profile: str | None, seeds: list[int], spec_seeds: tuple[int, ...], overrides: list[str]
) -> Path:
    """Where an invocation writes its report: ``outputs/reports/<study>`` for the spec as written (its seeds, no
    profile, no command-line overrides), else a folder beside it named for what differs, so that a smoke run, a
    subset of the seeds or an override never replaces the table of the spec's own runs:
    ``outputs/reports/table8-smoke``, ``outputs/reports/demo-seeds-3-4-5``,
    ``outputs/reports/table8-overrides-1a2b3c4d`` (the overrides' digest, in the order given), or several of
    those parts in that order."""
    parts = [study]
    if profile:
        parts.append(profile)
    if sorted(set(seeds)) != sorted(set(spec_seeds)):
        parts.append("seeds-" + "-".join(str(s) for s in sorted(seeds)))
    if overrides:
        parts.append("overrides-" + hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8])
    return Path("outputs") / "reports" / "-".join(parts)


def invocation_text(profile: str | None, seeds: list[int], spec_seeds: tuple[int, ...], overrides: list[str]) -> str:
    """What an invocation changed from the spec as written, for the table's provenance ("" when nothing):
    ``--profile smoke --seeds 0 trainer.epochs=5``."""
    parts = [f"--profile {profile}"] if profile else []
    if sorted(set(seeds)) != sorted(set(spec_seeds)):
        parts.append("--seeds " + ",".join(str(s) for s in seeds))
    return " ".join(parts + [shlex.quote(o) for o in overrides])


def report(
    spec_path: Path,
    uri: str,
    seeds: list[int],
    trials: list[Trial],
    tracker=None,
    out: Path | None = None,
    invocation: str = "",
) -> None:
    """Builds the study's table and figures from MLflow for the seeds of this invocation (``--seeds``, else the
    spec's), writes them under ``out`` (default ``outputs/reports/<study>``; the driver's: ``report_folder``),
    with ``invocation`` (what the command changed from the spec: ``invocation_text``) in their provenance,
    prints the table and where the files went, and logs them to the invocation's parent run, when it
    opened one (``tracker.parent_id``; the parent has ended by now): under ``report/``, with the Markdown table
    as the run's description. A cell shows only runs of its trial key in ``trials`` (``keyed_trials``), a cell
    of a row without one the newest run."""
    from reports.make import make_report
    from runners.ensembles import cell_keys
    from runners.store_reads import study_runs

    spec = load_spec(spec_path)
    keys = cell_keys(spec, {(t.row.id, t.column, t.seed): t.key for t in trials})
    runs = study_runs(uri, spec.name)
    spec = dataclasses.replace(spec, seeds=tuple(seeds))
    out = out or Path("outputs") / "reports" / spec.name  # the runs it planned, synthetic or not
    result = make_report(spec, out, tracking_uri=uri, keys=keys, runs=runs, invocation=invocation)
    print(result.markdown)
    if result.files:
        print(f"written: {result.files[0].parent}/ ({len(result.files)} files)")
    if result.removed:
        names = ", ".join(str(path.relative_to(result.out)) for path in result.removed)
        print(f"removed from {result.out}/ what the last report there wrote and this one did not: {names}")
    for warning in result.warnings:
        print(f"note: {warning}")
    if tracker is not None and tracker.parent_id and result.out is not None:
        try:
            tracker.log_report(result.files, result.markdown, result.out)
        except Exception as err:  # the files are written; MLflow's copy of them is a convenience
            print(f"note: the report was not logged to the parent run {tracker.parent_id}: {err}", file=sys.stderr)


def ray_client_problem(address: str | None, argv: list[str]) -> str | None:
    """Why ``--address`` cannot be used (None when it can): a Ray Client address (``ray://HOST:10001``).

    Under Ray Client the driver's Tune callbacks are pickled to the head node and run there, where the MLflow
    logger has no store (its client, journal and lease stay on this machine). The driver runs on the cluster
    instead, submitted as a Ray job; the message gives the command, with ``--address auto``.
    """
    if not address or not address.strip().lower().startswith("ray://"):
        return None
    head = urlsplit(address.strip()).hostname or "HEAD"
    command = ["python", "-m", "runners.run", *_with_address(argv, "auto")]
    submit = f"ray job submit --address http://{head}:8265 --working-dir . -- " + shlex.join(command)
    return (
        f"--address {address} is a Ray Client address: under Ray Client, Tune pickles the driver's callbacks to "
        "the head node, where the MLflow logger has no store. Run the driver on the cluster instead, as a Ray "
        f"job (from the project's folder; the dashboard's port, 8265, must be reachable):\n  {submit}\n"
        "(README, 'On a cluster')"
    )


def _with_address(argv: list[str], address: str) -> list[str]:
    """``argv`` with the value of ``--address`` (``--address X``, ``--address=X``, or argparse's abbreviations
    such as ``--addr X``) replaced by ``address``."""
    out, i = [], 0
    while i < len(argv):
        option, eq, _ = argv[i].partition("=")
        if len(option) > 2 and "--address".startswith(option):
            out += [f"--address={address}"] if eq else ["--address", address]
            i += 1 if eq else 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    problem = ray_client_problem(args.address, argv) or (None if args.dry_run else cluster_problem(args.address))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    signals.install()
    try:
        return _main(argv, args)
    except Stopped as stop:
        print(f"stopped by {stop}", file=sys.stderr)
        return stop.exit_code


def _main(argv: list[str], args: argparse.Namespace) -> int:
    try:
        if plugin_entry_points():  # a broken plugin is reported before anything else
            load_plugins()
        use_config_dirs(args.config_dir)
        spec_path = find_spec(args.study)
        spec = load_spec(spec_path)
        check_command_line(args)
        uri = args.mlflow_uri or default_tracking_uri()
        check_tracking_uri(uri)  # an option too: checked before the plan, whose checks may take a while
        profile, seeds, spec = select(spec, args)
        trials, plan = plan_study(spec, profile, seeds, args)
    except (SpecError, PlanError, CompositionError, RegistryError, TrackingUnreachable) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.dry_run:
            return dry_run(spec, trials, args, uri, plan)
        args.report_folder = str(report_folder(spec.name, args.profile, seeds, spec.seeds, args.overrides))
        status, session = run_study(spec, trials, args, uri, argv, spec_path, plan)
    except (TrackingUnreachable, LeaseHeld, RayUnreachable) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if status in (EXIT_OK, EXIT_FAILED_TRIALS, EXIT_WAITING) and not args.no_report:  # not stopped, MLflow up
        out = Path(args.report_folder)
        ran = invocation_text(args.profile, seeds, spec.seeds, args.overrides)
        keyed = keyed_trials(spec_path, profile, seeds, args, trials)
        report(spec_path, uri, seeds, keyed, session.tracker, out, ran)
    return status


def run_study(
    spec: StudySpec, trials: list[Trial], args: argparse.Namespace, uri: str, argv: list[str], spec_path, plan
) -> tuple[int, StudySession]:
    """Runs the study's invocation (``StudySession``); with ``--wait``, while trials are left to other drivers
    (exit 4), runs it again every ``--wait-every`` seconds (naming them once), so that it reuses their results once
    they finished, or runs them itself once their claims are free without a result. Returns the exit status and
    the last session."""
    announced: frozenset[str] = frozenset()
    said: set[str] = set()
    owner = uuid.uuid4().hex  # one lease owner for every invocation of the loop (``StudySession``)
    while True:
        session = StudySession(spec, trials, args, uri, argv, spec_path=spec_path, plan=plan,
                               announced=announced, said=said, owner=owner)  # fmt: skip
        status = session.execute()
        if session.lost is not None:  # another driver took the lease over meanwhile: it goes on with the study
            raise session.lost
        if status != EXIT_WAITING or not args.wait:
            return status, session
        announced = frozenset(t.name for t in session.waiting)
        time.sleep(args.wait_every)


def dry_run(spec: StudySpec, trials: list[Trial], args: argparse.Namespace, uri: str, plan: PlanCache) -> int:
    """Prints the plan (cached and reused trials marked from the store: from its kept reads while it is unchanged,
    ``runners.store_reads``); writes nothing but the on-disk caches."""
    tracker, note = mark_states(spec, trials, args, uri)
    if any(t.counts is None for t in trials):
        count_trials(trials)
        plan.save(trials)  # with the counts: the next dry run imports no torch
    if args.json:
        print(plan_json(trials))
    else:
        from runners.claims import claimed_by

        todo = [t for t in trials if not t.state.finished]
        print(plan_table(trials, claimed_by(uri, [t.key for t in todo] + [t.evaluates for t in todo if t.evaluates])))
    if note:
        print(note, file=sys.stderr)
    if not args.address:  # a cluster's nodes are known once the run joins it
        from runners.feasibility import dry_run_warning

        warning = dry_run_warning([t for t in trials if not t.state.finished])
        if warning:
            print(warning, file=sys.stderr)
    if args.estimate:
        from runners.estimate import default_slots, estimate, format_costs, local_cluster

        if tracker is not None:
            tracker.note_epochs_done(trials)
        costs = estimate(trials)
        cluster = None if args.address else local_cluster()  # a dry run does not join the cluster
        todo = [t for t in trials if not t.state.finished]
        slots = args.max_concurrent or (default_slots(todo, cluster) if cluster else max(len(todo), 1))
        # under --json, the plan alone is on stdout
        print(format_costs(costs, trials, slots, cluster), file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def cli() -> NoReturn:
    """The ``ean-run`` command: :func:`main`, then the process ends without Python's slow teardown of Ray, Tune
    and MLflow (``runners.process_exit``)."""
    exit_now(main())


if __name__ == "__main__":
    cli()
