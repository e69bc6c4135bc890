"""``python -m runners.run STUDY.yaml [overrides ...]``: plan a study, run its new trials on Ray, log to MLflow.

Every (row, seed) of the spec becomes a trial composed with Hydra from ``studies/conf``; all of them are
checked before anything starts (exit 2 naming file, row, value and the valid choices). Trials with a
FINISHED run in MLflow are cached; the others run on a local Ray (or ``--address``), retried from their
last checkpoint when they crash. At the end the study's table is printed and written (``reports.make``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ean
from runners import signals
from runners.journal import JOURNAL_NAME, BufferedTracker, Journal, replay
from runners.lease import LeaseHeld
from runners.local_ray import use_local_ray_settings
from runners.plan import ModelCounts, PlanError, Trial, TrialState, build_plan
from runners.progress import Progress
from runners.signals import Stopped
from runners.tracking_check import TrackingUnreachable, check_tracking_uri
from study import mlflow_schema as S
from study.find import find_spec
from study.mlflow_schema import default_tracking_uri
from study.policy import override_problem
from study.profiles import profile_overrides
from study.spec import SpecError, StudySpec, load_spec, spec_hash

EXIT_OK, EXIT_FAILED_TRIALS, EXIT_BAD_INPUT, EXIT_STORE_DOWN = 0, 1, 2, 3
#: How long the end of a study waits for MLflow to take the writes still buffered.
FLUSH_WAIT_S = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runners.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  python -m runners.run studies/table8.yaml --profile smoke      # synthetic data, minutes on a CPU\n"
        "  python -m runners.run studies/table8.yaml --dry-run            # the plan: trials, keys, cached?\n"
        "  python -m runners.run table8 data.root=/data/sth1 --address auto --mlflow-uri http://head:5000\n"
        "\nExit status: 0 all trials finished; 1 a trial failed; 2 bad input, another driver runs the study, or\n"
        "MLflow does not answer; 3 MLflow stopped answering mid-study (its writes wait on disk for the next run);\n"
        "130 / 143 stopped by SIGINT / SIGTERM (the same command resumes).\n",
    )
    parser.add_argument("study", help="a study spec file, or a name in studies/ (table8 -> studies/table8.yaml)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every trial, e.g. trainer.epochs=10")
    parser.add_argument(
        "--profile", help="a named override set: studies/profiles/NAME.yaml, refined by the spec (e.g. smoke)"
    )
    parser.add_argument("--seeds", help="comma-separated seeds instead of the spec's (e.g. 0,1)")
    parser.add_argument("--rows", help="comma-separated row ids to run (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit; nothing runs or is logged")
    parser.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON, one entry per trial")
    parser.add_argument("--address", help="a Ray cluster to join (e.g. auto or ray://head:10001); default: local")
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
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default: as many as resources allow)")
    parser.add_argument("--max-failures", type=int, default=2, help="retries of a crashed trial from its checkpoint")
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="train trials again even when a FINISHED run exists (here or in another study)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not build the table at the end")
    return parser.parse_intermixed_args(argv)


def select(spec: StudySpec, args: argparse.Namespace) -> tuple[list[str], list[int], StudySpec]:
    """The profile's overrides, the seeds and the spec restricted to ``--rows``."""
    profile = profile_overrides(spec, args.profile) if args.profile else []
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(spec.seeds)
    except ValueError:
        raise SpecError(f"--seeds must be comma-separated integers, got '{args.seeds}'") from None
    if args.rows:
        wanted = args.rows.split(",")
        unknown = [r for r in wanted if r not in {row.id for row in spec.rows}]
        if unknown:
            raise SpecError(f"unknown rows {unknown}; rows of {spec.name}: {', '.join(r.id for r in spec.rows)}")
        spec = dataclasses.replace(spec, rows=tuple(r for r in spec.rows if r.id in wanted))
    return profile, seeds, spec


def check_overrides(overrides: list[str]) -> None:
    for item in overrides:
        problem = override_problem(item)
        if problem:
            raise SpecError(f"override '{item}' {problem}; overrides choose values only")


def count_trials(trials: list[Trial]) -> None:
    """Sets each trial's ``counts``: Params and FLOPs (MACs) of its model, counted once per network as built
    (random weights) by ``ean.profile``."""
    from ean.models import network_identity
    from ean.profile import profile_model, without_weights

    cache: dict[str, ModelCounts] = {}
    for trial in trials:
        model = without_weights(trial.config["model"])
        key = json.dumps(network_identity(model), sort_keys=True)
        if key not in cache:
            measured = profile_model(model)
            cache[key] = ModelCounts(params=measured.params, macs=measured.macs)
        trial.counts = cache[key]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


RECIPE_LINE = (
    "global batch {global_batch} = {devices} device(s) x {per_device_batch} clips x {accumulation} accumulated, "
    "lr {lr} ({schedule}, steps {lr_steps}), {epochs} epochs, momentum {momentum}, weight decay {weight_decay} "
    "({param_groups} groups), clip {clip_grad}, dropout {dropout}, pretrained {pretrained}, protocol {protocol}"
)


def recipe_lines(trials: list[Trial]) -> list[str]:
    """The recipe once per study (once per distinct recipe where rows differ), with the rows that use it."""
    by_recipe: dict[str, list[str]] = {}
    for t in trials:
        by_recipe.setdefault(json.dumps(t.recipe, sort_keys=True), []).append(t.row.id)
    if len(by_recipe) == 1:
        return ["recipe: " + RECIPE_LINE.format(**trials[0].recipe)]
    return [
        f"recipe of {', '.join(dict.fromkeys(rows))}: " + RECIPE_LINE.format(**json.loads(recipe))
        for recipe, rows in by_recipe.items()
    ]


def plan_table(trials: list[Trial]) -> str:
    lines = recipe_lines(trials) if trials else []
    lines.append(f"{'trial':40} {'key':16} {'state':7} {'params':>8} {'FLOPs':>8}")
    for t in trials:
        p = f"{t.counts.params / 1e6:.2f}M" if t.counts is not None else "-"
        f = f"{t.counts.macs / 1e9:.2f}G" if t.counts is not None else "-"
        source = f"  reused from {t.source}" if t.state == TrialState.REUSED else ""
        lines.append(f"{t.name:40} {t.key:16} {t.state.value:7} {p:>8} {f:>8}{source}")
    return "\n".join(lines)


def plan_json(trials: list[Trial]) -> str:
    entries = [
        {
            "row": t.row.id,
            "seed": t.seed,
            "trial_key": t.key,
            "state": t.state.value,
            "cached": t.state == TrialState.CACHED,
            "reused_from": t.source,
            "recipe": t.recipe,
            "params": t.counts.params if t.counts is not None else None,
            "flops": t.counts.macs if t.counts is not None else None,
            "config": t.config,
        }
        for t in trials
    ]
    return json.dumps(entries, indent=2)


def read_tracker(uri: str, spec: StudySpec):
    """The study's tracker for a dry run, reading only: None when the store is not there yet."""
    from runners.tracking import StudyTracker

    if fresh_store(uri):
        return None
    return StudyTracker.read_only(uri, spec.name, spec_hash(spec))


def fresh_store(uri: str) -> bool:
    """Whether ``uri`` is a sqlite store that does not exist yet (then no trial can be cached)."""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


def shell_command(argv: list[str]) -> str:
    return " ".join(["python -m runners.run", *(shlex.quote(a) for a in argv)])


@dataclasses.dataclass
class Session:
    """One invocation's hold on its study: the tracker, the lease and the trials to run."""

    tracker: Any
    lease: Any
    todo: list[Trial]


def open_study(spec: StudySpec, trials: list[Trial], args: argparse.Namespace, uri: str, command: str) -> Session:
    """Opens (or creates) the store, takes the study's lease, reconciles the runs of a dead driver and marks
    cached and reused trials.

    Raises:
        LeaseHeld: another live driver runs this study.
    """
    from runners.lease import StudyLease
    from runners.tracking import StudyTracker

    tracker = StudyTracker(uri, spec.name, spec_hash(spec))
    lease = StudyLease(uri, tracker.experiment_id, spec.name, command)
    previous = lease.acquire()
    try:
        if previous:
            print(f"{spec.name}: taking over from a driver that stopped ({previous.describe()})")
        journal = Journal(journal_path(Path(args.storage).resolve(), spec))
        replayed = replay(tracker, journal, S.EPOCH_LOGGED)
        if replayed:
            print(f"{spec.name}: applied {replayed} MLflow write(s) an earlier invocation left in {journal.path}")
        stale = tracker.reconcile()
        if stale:
            print(f"reconciled {len(stale)} run(s) left RUNNING by a driver that stopped (marked KILLED)")
        tracker.mark_cached(trials, args.rerun)
    except BaseException:
        lease.release()
        raise
    todo = [t for t in trials if not t.state.finished]
    reused = sum(t.state == TrialState.REUSED for t in trials)
    if todo:
        print(
            f"{spec.name}: {len(todo)} trial(s) to run, {len(trials) - len(todo) - reused} cached, "
            f"{reused} reused from other studies; MLflow: {uri}"
        )
    return Session(tracker, lease, todo)


def prepare_runs(tracker, trials: list[Trial], todo: list[Trial], args: argparse.Namespace, argv: list[str]):
    """Params and FLOPs of the new trials, the invocation's parent run and the runs of reused trials;
    returns the tracker."""
    count_trials(todo)
    tracker.start_parent(args.profile, ["python -m runners.run", *argv])
    adopt_reused(tracker, trials)
    return tracker


def adopt_reused(tracker, trials: list[Trial]) -> None:
    """Gives each reused trial its run in this study (a copy of the source run's results, pointing at it)."""
    for trial in (t for t in trials if t.state == TrialState.REUSED):
        source = trial.source
        tracker.reuse_trial(trial, {S.TAG_CODE_VERSION: ean.__version__})
        print(f"{trial.name}: reused from {source} (same trial key {trial.key}; --rerun trains it here)")


def execute(spec: StudySpec, trials: list[Trial], args: argparse.Namespace, uri: str, argv: list[str]) -> int:
    """Takes the study's lease, runs the new trials on Ray, closes the runs; returns the exit status.

    Start-up work overlaps: a new sqlite store is created by another thread while this one starts Ray; the
    models' Params and FLOPs are counted and the parent run opened while Tune starts the first trials'
    processes (the first MLflow write of a trial waits for that). SIGINT and SIGTERM stop the trials and mark
    their runs KILLED.
    """
    if not args.address:
        use_local_ray_settings()
    from runners.scheduler import start_ray

    command = shell_command(argv)
    pool = ThreadPoolExecutor(1, thread_name_prefix="ean-prepare")
    opening = pool.submit(open_study, spec, trials, args, uri, command) if fresh_store(uri) else None
    session = None
    try:
        if opening is None:
            session = open_study(spec, trials, args, uri, command)
            if not session.todo:
                return finish_cached(spec, trials, args, uri, argv, session.tracker)
        start_ray(args.address)
        signals.install()  # again: Ray's local cluster installed its own SIGTERM handler
        session = session or opening.result()
        preparing = pool.submit(prepare_runs, session.tracker, trials, session.todo, args, argv)
        return run_and_close(spec, trials, session.todo, preparing, args, uri)
    except Stopped as stop:
        signals.ignore()
        print(f"\n{spec.name}: stopped by {stop}; finished trials are kept. Resume with:\n  {command}", file=sys.stderr)
        return stop.exit_code
    finally:
        pool.shutdown(wait=False)
        if session is None and opening is not None and opening.done() and not opening.exception():
            session = opening.result()
        if session is not None:
            session.lease.release()


def finish_cached(spec: StudySpec, trials: list[Trial], args, uri: str, argv: list[str], tracker) -> int:
    """Every trial is FINISHED here or elsewhere: adopt the reused ones, log the ensembles."""
    if any(t.state == TrialState.REUSED for t in trials):
        prepare_runs(tracker, trials, [], args, argv)
        tracker.end_parent(S.STATUS_FINISHED)
    print(
        f"{spec.name}: all {len(trials)} trials already FINISHED in MLflow (cached or reused); --rerun runs them again"
    )
    _ensembles(spec, trials, tracker, args.rerun)
    print(browse_hint(uri, tracker.experiment_id))
    return EXIT_OK


def run_and_close(spec: StudySpec, trials: list[Trial], todo: list[Trial], preparing: Future, args, uri: str) -> int:
    """Runs ``todo`` on Ray Tune and closes every run it opened: FINISHED, FAILED, or KILLED when stopped.

    MLflow writes go through the study's journal (``runners.journal``): an outage never stalls training, and
    writes MLflow has not taken when the study ends stay there for the next invocation.
    """
    from runners.scheduler import run_trials, stop_ray

    common = {S.TAG_GIT_COMMIT: git_commit(), S.TAG_CODE_VERSION: ean.__version__}
    epochs = max(t.config["trainer"].get("epochs", 1) for t in todo)
    storage = Path(args.storage).resolve()
    progress = Progress(len(todo), epochs)
    journal = Journal(journal_path(storage, spec))
    writer = BufferedTracker(preparing, journal, S.EPOCH_LOGGED, report=lambda line: progress.note("MLflow", line))
    opened: set[str] = set()

    def open_run(trial: Trial) -> None:
        """Opens (or reopens) the trial's MLflow run when Ray starts the trial, so its times are the trial's."""
        data = trial.config["data"]
        tags = {**common, S.TAG_DATASET: data["dataset"], S.TAG_PROTOCOL: trial.recipe["protocol"]}
        writer.open_trial(trial, tags, args.rerun)
        opened.add(trial.key)

    limits = {"max_concurrent": args.max_concurrent, "max_failures": args.max_failures}
    outcome = run_trials(todo, writer, open_run, storage, args.address, progress=progress, **limits)
    stopped = signals.requested()
    if stopped:
        signals.ignore()
        stop_ray()  # ends the trials' processes before their runs are closed
    failed = [t for t in todo if outcome.get(t.key) != "finished"]
    for t in failed:
        if t.key not in outcome and t.key in opened:
            reason = "not completed: the run was interrupted"
            if stopped:
                reason = f"stopped by {stopped} before it finished; the same command resumes it"
            writer.submit("kill" if stopped else "fail", key=t.key, reason=reason)
    status = S.STATUS_KILLED if stopped else S.STATUS_FINISHED if not failed else S.STATUS_FAILED
    writer.submit("end_parent", status=status)
    left = writer.flush(args.mlflow_wait)
    writer.close()
    if left:
        print(
            f"MLflow ({uri}) did not answer: {left} write(s) are kept in {journal.path}; the next invocation (the "
            "same command) applies them first",
            file=sys.stderr,
        )
        return stopped.exit_code if stopped else EXIT_STORE_DOWN
    journal.clear_if_done()
    if stopped:
        raise stopped
    tracker = preparing.result()
    _ensembles(spec, trials, tracker, args.rerun)
    print(browse_hint(uri, tracker.experiment_id))
    if failed:
        print(f"{len(failed)} trial(s) failed: " + ", ".join(t.name for t in failed), file=sys.stderr)
        return EXIT_FAILED_TRIALS
    return EXIT_OK


def journal_path(storage: Path, spec: StudySpec) -> Path:
    return storage / spec.name / JOURNAL_NAME


def browse_hint(uri: str, experiment_id: str) -> str:
    """Where to see the study's runs: the UI's page of the experiment, in its model-training view."""
    page = f"#/experiments/{experiment_id}?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"runs: {uri.rstrip('/')}/{page}"
    return f"runs: mlflow ui --backend-store-uri {uri}, then http://127.0.0.1:5000/{page}"


def _ensembles(spec: StudySpec, trials: list[Trial], tracker, rerun: bool) -> None:
    if not any(r.ensemble for r in spec.rows):
        return
    from runners.ensembles import run_ensembles

    seeds = sorted({t.seed for t in trials})
    for name, state in run_ensembles(spec, seeds, tracker, rerun).items():
        print(f"ensemble {name}: {state}")


def report(spec_path: Path, uri: str, seeds: list[int]) -> None:
    """Builds the study's table and figures from MLflow for the seeds of this invocation (``--seeds``, else the
    spec's), prints the table and where the files went."""
    from reports.make import make_report

    spec = load_spec(spec_path)
    result = make_report(dataclasses.replace(spec, seeds=tuple(seeds)), tracking_uri=uri)
    print(result.markdown)
    if result.files:
        print(f"written: {result.files[0].parent}/ ({len(result.files)} files)")
    for warning in result.warnings:
        print(f"note: {warning}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    signals.install()
    try:
        return _main(argv, args)
    except Stopped as stop:
        print(f"stopped by {stop}", file=sys.stderr)
        return stop.exit_code


def _main(argv: list[str], args: argparse.Namespace) -> int:
    try:
        spec_path = find_spec(args.study)
        spec = load_spec(spec_path)
        profile, seeds, spec = select(spec, args)
        check_overrides(args.overrides)
        trials = build_plan(spec, profile, args.overrides, seeds, Path.cwd())
    except (SpecError, PlanError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    uri = args.mlflow_uri or default_tracking_uri()
    try:
        check_tracking_uri(uri)
        if args.dry_run:
            return dry_run(spec, trials, args, uri)
        status = execute(spec, trials, args, uri, argv)
    except (TrackingUnreachable, LeaseHeld) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if status in (EXIT_OK, EXIT_FAILED_TRIALS) and not args.no_report:  # not when stopped or MLflow is down
        report(spec_path, uri, seeds)
    return status


def dry_run(spec: StudySpec, trials: list[Trial], args: argparse.Namespace, uri: str) -> int:
    """Prints the plan (cached and reused trials marked from the store); writes nothing anywhere."""
    tracker = read_tracker(uri, spec)
    if tracker is not None:
        tracker.mark_cached(trials, args.rerun)
    count_trials(trials)
    print(plan_json(trials) if args.json else plan_table(trials))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
