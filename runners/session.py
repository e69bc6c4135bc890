"""StudySession: one invocation of a study, top to bottom: open, run the new trials, close.

    open   the MLflow store (created when new), the study's lease (one driver per study), the MLflow writes
           an earlier invocation left in the journal, the runs a dead driver left RUNNING, and each trial's
           state: new, cached (FINISHED here), reused (FINISHED in another study) or resume; the keys of the
           trials to run claimed store-wide, those another live driver runs left to it (``runners.claims``).
    run    Ray started; the parent run (with the spec file and the plan), the reused trials' runs and the
           counts of the new trials' networks; the new trials on Ray Tune, every MLflow write through the
           study's journal; the ensembles. (The caller logs the report to the parent: ``parent_id``.)
    close  the trial keys' claims and the lease released, whatever happened.

Start-up overlap, kept inside this class: a new sqlite store (a copy of an empty one,
``runners.store_template``) is opened in a thread while Ray starts, MLflow's imports with it; the parent run
is opened and the networks counted while Tune starts the first trials' processes (the first MLflow write of a
trial waits for that). SIGINT and SIGTERM stop the trials and mark their runs KILLED (``runners.signals``).

Heavy modules (ray, mlflow, torch) are imported where first used, so that a study with nothing to train
and a dry run never import what they do not use.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import import_module
from pathlib import Path

import ean
from ean.command_name import command_name
from runners import signals
from runners.code_digest import other_code_note
from runners.journal import JOURNAL_NAME, BufferedTracker, Journal, replay, transient
from runners.local_ray import start_ray, stop_ray, use_local_ray_settings
from runners.plan_cache import PlanCache
from runners.progress import Progress
from runners.signals import Stopped
from runners.store_reads import StoreReads, nothing_to_do, set_states, states_answer, states_question
from runners.store_template import sqlite_path
from runners.trials import Trial, TrialState, count_trials, plan_json
from study import mlflow_schema as S
from study.spec import StudySpec, spec_hash

EXIT_OK, EXIT_FAILED_TRIALS, EXIT_BAD_INPUT, EXIT_STORE_DOWN, EXIT_WAITING = 0, 1, 2, 3, 4


class StudySession:
    """Runs the trials of one study invocation that have no FINISHED run, and closes what it opened.

    Args:
        spec: the study (rows already restricted to ``--rows``).
        trials: the plan (``runners.plan.build_plan``).
        args: the command line's options (``--rerun``, ``--storage``, ``--address``, limits, ...).
        uri: the MLflow tracking URI.
        argv: the command line, for the parent run and the resume hint.
        spec_path: the spec file, logged to the parent run as ``spec.yaml`` (None: not logged).
        plan: the plan's entry in the plan cache (``runners.plan_cache.PlanCache``), which keeps the counts once
            made (None: not kept).
        announced: the trials an earlier invocation of the same command already said it leaves to other drivers
            (``--wait`` runs it again): not named again while they wait.
        said: the notes earlier invocations of the same ``--wait`` printed (not printed again; this one adds its
            own); None: a set of its own.
        owner: the lease's owner id (``runners.lease.StudyLease``); the invocations of one ``--wait`` share one,
            so that a lease or claim one of them could not free is taken as this driver's, not another's.
    """

    def __init__(
        self,
        spec: StudySpec,
        trials: list[Trial],
        args: argparse.Namespace,
        uri: str,
        argv: list[str],
        spec_path: Path | None = None,
        plan: PlanCache | None = None,
        announced: frozenset[str] = frozenset(),
        said: set[str] | None = None,
        owner: str | None = None,
    ):
        self.spec, self.trials, self.args, self.uri, self.argv = spec, trials, args, uri, argv
        self.spec_path, self.plan, self.announced, self.owner = spec_path, plan, announced, owner
        self.said = set() if said is None else said
        self.lost: Exception | None = None  # the lease another driver took over (``lost_error``), once closed
        self.command = shell_command(argv)
        self.journal_path = Path(args.storage).resolve() / spec.name / JOURNAL_NAME
        self.tracker = self.lease = None
        self.todo: list[Trial] = []
        self.rerun_begun: int | None = None  # with --rerun: when the rerun began (Unix ms)
        self.rerun_began_here = False  # with --rerun: this invocation began it (not going on with one)
        self.writer: BufferedTracker | None = None  # the MLflow writes of ``run``
        self.claims = None  # the trial keys this driver claims (``runners.claims.KeyClaims``), once it holds the lease
        self.reads = StoreReads(uri)  # the store's reads kept until it changes
        self.experiment_id: str | None = None  # the study's MLflow experiment, once known
        self.waiting: list[Trial] = []  # trials another live driver claims: left to it (``claim``)

    # -- the flow -------------------------------------------------------------------------------------------
    def execute(self) -> int:
        """Open, run, close; returns the exit status (``EXIT_*``; 130/143 when a signal stopped it).

        Raises:
            LeaseHeld: another live driver runs this study.
        """
        if not self.args.address:
            use_local_ray_settings()
        pool = ThreadPoolExecutor(1, thread_name_prefix="ean-prepare")
        opening = pool.submit(self.open) if fresh_store(self.uri) else None
        try:
            if opening is None:
                if self.kept_all_cached():  # the store unchanged since it said so: no MLflow, no lease, no Ray
                    return self.finish_cached()
                self.open()
                if not self.todo:  # nothing to train: Ray is neither imported nor started
                    return self.end_rerun(self.finish_cached())
            import ray  # noqa: F401  here, before the thread below imports Tune (which imports ray)

            threading.Thread(target=import_module, args=("runners.scheduler",), daemon=True).start()  # Tune (no torch)
            start_ray(self.args.address)  # meanwhile: runners.local_ray imports no Tune, no torch
            signals.install()  # again: Ray's local cluster installed its own SIGTERM handler
            if opening is not None:
                opening.result()
                if not self.todo:  # a new store and nothing to train (a plan without trials)
                    return self.end_rerun(self.finish_cached())
            if not self.resources_fit():
                return self.undo_rerun(EXIT_BAD_INPUT)
            return self.end_rerun(self.run(pool.submit(self.prepare_runs)))
        except Stopped as stop:
            signals.ignore()
            print(
                f"\n{self.spec.name}: stopped by {stop}; finished trials are kept. Resume with:\n  {self.command}",
                file=sys.stderr,
            )
            return stop.exit_code
        finally:
            pool.shutdown(wait=False)
            self.close()

    def resources_fit(self) -> bool:
        """Whether the Ray the study runs on can ever hold the resources of the trials to run
        (``runners.feasibility``): on the local Ray, trials no node holds are refused (an error, False); on a
        joined cluster the driver warns and runs them (an autoscaler may add nodes)."""
        from runners.feasibility import refusal, unplaceable, warning

        nodes = _node_resources()
        lines = unplaceable(self.todo, nodes)
        if not lines:
            return True
        if self.args.address:
            print(warning(lines, nodes), file=sys.stderr)
            return True
        print(f"error: {refusal(lines, nodes)}", file=sys.stderr)
        return False

    def open(self) -> None:
        """Opens (or creates) the store, takes the lease, applies the journal's writes, reconciles the runs of
        a dead driver and marks cached and reused trials."""
        from runners.lease import StudyLease
        from runners.tracking import StudyTracker

        spec = self.spec
        version = self.reads.version()  # before any read: a write meanwhile leaves what they find unkept
        tracker = StudyTracker(self.uri, spec.name, spec_hash(spec))
        self.experiment_id = tracker.experiment_id
        if self.nothing_to_write(tracker, version):
            self.tracker, self.todo = tracker, []
            self._print_once(tracker.other_code_note())
            return
        lease = StudyLease(
            self.uri, tracker.experiment_id, spec.name, self.command, on_lost=self.lease_lost, owner=self.owner
        )
        previous = lease.acquire()
        self.lease = lease  # released by close() from now on
        if previous:
            print(f"{spec.name}: taking over from a driver that stopped ({previous.describe()})")
        counted = {t.key: t.counts for t in self.trials if t.counts is not None}
        replayed = replay(tracker, Journal(self.journal_path), S.EPOCH_LOGGED, counted)
        if replayed:
            print(f"{spec.name}: applied {replayed} MLflow write(s) an earlier invocation left in {self.journal_path}")
        stale = tracker.reconcile()
        if stale:
            print(
                f"reconciled {len(stale)} run(s) left RUNNING by a driver that stopped (trainings marked KILLED, "
                "copies and averages cut short deleted)"
            )
        self.mark(tracker)
        self.tracker, self.todo = tracker, [t for t in self.trials if not t.state.finished]
        self.claim(lease.owner)
        reused = sum(t.state == TrialState.REUSED for t in self.trials)
        if self.todo:
            cached = len(self.trials) - len(self.todo) - len(self.waiting) - reused
            print(
                f"{spec.name}: {len(self.todo)} trial(s) to run, {cached} cached, {reused} reused from other "
                f"studies; MLflow: {self.uri}"
            )
        self._print_once(tracker.other_code_note())

    def claim(self, owner: str) -> None:
        """Claims the keys of the trials to run (``runners.claims``; the lease held): a training whose key another
        live driver claims is left to it, and so is an evaluation of it (``waiting``). Then the states are read
        again under the claims: a key another driver finished meanwhile is reused, and a trial whose source went
        meanwhile is claimed and run."""
        from runners.claims import KeyClaims, held_by

        self.claims = KeyClaims(self.uri, self.tracker.experiment_id, self.spec.name, owner, journal=self.journal_path)
        if self.lease is not None:  # a claim taken over while this driver runs stops it, as a lost lease does
            self.lease.watch = self.claims.lost
        held = self._take(self.todo)
        if self.todo and not self.args.rerun:
            self.tracker.mark_cached(self.trials, rerun=False)
            self.todo = [t for t in self.trials if not t.state.finished]
            held |= self._take(self.todo)  # keys held already are kept, not taken again
        self.waiting = [t for t in self.todo if t.key in held or t.evaluates in held]
        self.todo = [t for t in self.todo if t not in self.waiting]
        for trial in (t for t in self.waiting if t.name not in self.announced):
            what = f"trial {trial.key}" if trial.key in held else f"its training {trial.evaluates}"
            print(f"{trial.name}: {what} is {held_by(held.get(trial.key) or held[trial.evaluates])}; not run here")

    def _take(self, trials: list[Trial]) -> dict[str, str]:
        """Claims the keys of ``trials`` (trainings first, then the evaluations of trainings not held elsewhere);
        returns those another live driver holds, each with who holds it."""
        held = self.claims.take(t.key for t in trials if t.evaluates is None)
        return held | self.claims.take(t.key for t in trials if t.evaluates is not None and t.evaluates not in held)

    def waiting_note(self, waits: bool = True) -> str | None:
        """What the trials left to other drivers need (``waiting``): the same command, once those finished (with
        ``--wait``, and ``waits``: the invocation ends waiting, it runs again by itself); None when it waits and
        every one of them was announced already."""
        waits = waits and getattr(self.args, "wait", False)
        if waits and not {t.name for t in self.waiting} - self.announced:
            return None
        then = "it trains them here (--rerun)" if self.args.rerun else "it reuses their results"
        if waits:
            return (
                f"{len(self.waiting)} trial(s) left to other studies (named above): waiting for them (--wait: "
                f"looking again every {self.args.wait_every:g} s), then {then}; Ctrl-C stops, and the same command "
                "goes on"
            )
        add = "" if getattr(self.args, "wait", False) else " (or add --wait)"
        return (
            f"{len(self.waiting)} trial(s) left to other studies (named above): run the same command again once "
            f"those finished them (or wrote the results waiting in their journals){add}, and {then}:\n  {self.command}"
        )

    def lease_lost(self, holder) -> None:
        """Another driver took the study's lease over, judging this one dead: stop the trials, write nothing more
        (called from the lease's heartbeat thread)."""
        if self.writer is not None:
            self.writer.fence()
        signals.request()

    def mark(self, tracker) -> None:
        """Marks the trials' states (lease held); with ``--rerun``, begins the rerun or goes on with the
        unfinished one this code began, whose trials trained again since are cached (said once)."""
        if not self.args.rerun:
            tracker.mark_cached(self.trials, rerun=False)
            return
        since, going_on = tracker.begin_rerun(self.rerun_keys)
        tracker.mark_cached(self.trials, rerun=True, rerun_since=since)
        self.rerun_begun, self.rerun_began_here = since, not going_on
        if going_on:
            done = sum(t.state == TrialState.CACHED for t in self.trials)
            began = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since / 1000))
            self._print_once(
                f"{self.spec.name}: going on with the --rerun begun at {began}: {done} trial(s) it trained again "
                "are kept",
                sys.stdout,
            )

    def end_rerun(self, status: int) -> int:
        """Clears the study's ``--rerun`` once every trial it planned has finished; returns ``status``."""
        if self.rerun_begun is not None and status == EXIT_OK:
            self.tracker.end_rerun(self.rerun_keys)
        return status

    def undo_rerun(self, status: int) -> int:
        """Clears a ``--rerun`` this invocation began when it ends before any trial started (refused): the next
        ``--rerun`` begins anew, instead of going on with one that trained nothing (whose begin would count a
        trial a plain run resumed to its end meanwhile as trained again). Returns ``status``."""
        if self.rerun_begun is not None and self.rerun_began_here:
            self.tracker.end_rerun(self.rerun_keys)
        return status

    @property
    def rerun_keys(self) -> list[str]:
        """The trial keys of this invocation (what a ``--rerun`` of it reruns)."""
        return [t.key for t in self.trials]

    def nothing_to_write(self, tracker, version: str | None = None) -> bool:
        """Whether this invocation only reads the store, and so takes no lease: no journal entry is pending, no
        run of the study is RUNNING (a live driver's, or a dead one's, which the lease holder reconciles), the
        study has no ensemble rows, and every trial is FINISHED in this study (a reused one is adopted: a write).
        Marks the trials' states from the store as a side effect, and keeps what it read when nothing is to be
        written and the store is at ``version`` still (taken before ``tracker`` was made: ``kept_all_cached``
        uses it while the store is unchanged)."""
        if not self.only_reads():
            return False
        if tracker.has_running():
            return False
        tracker.mark_cached(self.trials, self.args.rerun)
        if not all(t.state == TrialState.CACHED for t in self.trials):
            return False
        self.reads.put(self.states_question, version, states_answer(tracker, self.trials, running=False))
        return True

    def kept_all_cached(self) -> bool:
        """``nothing_to_write`` from the kept reads of a store unchanged since (``runners.store_reads``), without
        MLflow: True when they say every trial is FINISHED here and no run of the study RUNNING (the states set,
        the note on other code printed); False when nothing is kept for this store version, or it says otherwise
        (then ``open`` asks MLflow)."""
        answer = self.reads.get(self.states_question) if self.only_reads() else None
        if not nothing_to_do(answer):
            return False
        set_states(self.trials, answer)
        self.experiment_id = answer["experiment_id"]
        self._print_once(other_code_note(answer["other_code"], answer.get("other_digests", [])))
        return True

    def only_reads(self) -> bool:
        """What the invocation's options and the journal say of ``nothing_to_write``: no ``--rerun`` (it writes at
        least its end), no ensemble rows, no write pending in the journal."""
        if self.args.rerun or any(r.ensemble for r in self.spec.rows):
            return False
        return not Journal(self.journal_path).pending()

    @property
    def states_question(self) -> dict:
        """What the trials' states are kept under (``runners.store_reads.states_question``)."""
        return states_question(self.spec.name, spec_hash(self.spec), self.trials)

    @property
    def parent_id(self) -> str | None:
        """The invocation's parent run, once opened (None when every trial was cached here: none is opened)."""
        return self.tracker.parent_id if self.tracker is not None else None

    def close(self) -> None:
        """Releases the trial keys' claims and the lease (no-ops for those never taken; a store that does not
        answer leaves them to go stale)."""
        try:
            if self.lease is not None:
                self.lease.watch = None  # the claims this driver frees now are not taken from it
            if self.claims is not None:
                self.claims.release()
                self.claims = None
        finally:
            if self.lease is not None:
                if self.lease.lost.is_set():
                    self.lost = self.lease.lost_error()
                self.lease.release()
                self.lease = None

    # -- steps ----------------------------------------------------------------------------------------------
    def prepare_runs(self, todo: list[Trial] | None = None):
        """Params and FLOPs of the new trials, the invocation's parent run and the runs of reused trials;
        returns the tracker (the journal's writer waits for it)."""
        counting = [t for t in (self.todo if todo is None else todo) if t.counts is None]
        if counting:
            count_trials(counting)
            if self.plan is not None:
                self.plan.save(self.trials)  # with the counts: a later dry run of the study imports no torch
        files = {S.ARTIFACT_PLAN: plan_json(self.trials)}
        if self.spec_path is not None:
            files = {S.ARTIFACT_SPEC: Path(self.spec_path).read_text(encoding="utf-8"), **files}
        cost = self.known_cost()
        if cost is not None:
            files[S.ARTIFACT_ESTIMATE] = cost[0]
        parent = self.tracker.start_parent(
            self.args.profile,
            ["python -m runners.run", *self.argv],
            description=self.spec.title,
            files=files,
            report_folder=getattr(self.args, "report_folder", None),
        )
        if cost is not None:
            self.tracker.log_metrics(parent, cost[1])
        for trial in (t for t in self.trials if t.state == TrialState.REUSED):
            source = trial.source
            self.tracker.reuse_trial(trial, {S.TAG_CODE_VERSION: ean.__version__})
            print(f"{trial.name}: reused from {source} (same trial key {trial.key}; --rerun trains it here)")
        return self.tracker

    def known_cost(self) -> tuple[str, dict[str, float]] | None:
        """The estimated cost of the trials to run (``runners.estimate``: the table and its totals) when every
        network's step time on this machine's device is in the on-disk cache (a ``--dry-run --estimate`` timed
        them); None otherwise: nothing is timed while a study runs."""
        from runners.estimate import default_slots, estimate, format_costs, steps_timed, totals

        if not steps_timed():
            return None
        try:
            self.tracker.note_epochs_done(self.todo)
        except Exception as err:  # the figure is a note: resumed trials are then priced whole
            for trial in self.todo:
                trial.epochs_done = 0
            print(f"estimate: could not read the epochs resumed trials logged ({err}); priced whole", file=sys.stderr)
        costs = estimate(self.todo, cached_only=True)
        if not costs:
            return None
        cluster = _cluster_resources()
        slots = self.args.max_concurrent or default_slots(self.todo, cluster)
        device_hours, wall_hours = totals(costs, slots, cluster)
        text = format_costs(costs, self.trials, slots, cluster, waiting=len(self.waiting))
        return text + "\n", {S.METRIC_ESTIMATE_DEVICE_HOURS: device_hours, S.METRIC_ESTIMATE_WALL_HOURS: wall_hours}

    def finish_cached(self) -> int:
        """Every trial is FINISHED here or elsewhere, or left to another driver: adopt the reused ones, log the
        ensembles."""
        if any(t.state == TrialState.REUSED for t in self.trials):
            self.prepare_runs(todo=[])
            self.tracker.end_parent(S.STATUS_FINISHED)
        if not self.waiting:
            print(
                f"{self.spec.name}: {_all_trials(len(self.trials))} already FINISHED in MLflow (cached or reused); "
                "--rerun runs them again"
            )
        if self.tracker is not None:
            self.ensembles(self.tracker)
        note = self.waiting_note() if self.waiting else None
        if note or not self.waiting:
            print(browse_hint(self.uri, self.experiment_id))
        if note:
            print(note, file=sys.stderr)
        return EXIT_WAITING if self.waiting else EXIT_OK

    def run(self, preparing: Future) -> int:
        """Runs the new trials on Ray Tune and closes every run it opened: FINISHED, FAILED, or KILLED when
        stopped. MLflow writes go through the study's journal (``runners.journal``): an outage never stalls
        training, and writes MLflow has not taken when the study ends stay there for the next invocation."""
        from runners.scheduler import left_elsewhere, run_trials

        args, todo = self.args, self.todo
        system = self.tracker.system_tags  # journaled with each run it opens: a replay keeps this driver's
        from runners.code_digest import code_digest

        common = {
            **system,
            S.TAG_GIT_COMMIT: system[S.MLFLOW_GIT_COMMIT],
            S.TAG_CODE_VERSION: ean.__version__,
            S.TAG_CODE_DIGEST: code_digest(),
        }
        epochs = max(t.config["trainer"].get("epochs", 1) for t in todo)
        progress = Progress(len(todo), epochs, frozenset(t.name for t in todo if t.evaluates is not None))
        journal = Journal(self.journal_path)  # read anew: the replay in open() may have cleared it
        holds = self.lease.holds if self.lease is not None else None
        writer = BufferedTracker(
            preparing, journal, S.EPOCH_LOGGED, report=lambda ln: progress.note("MLflow", ln), holds_lease=holds
        )
        self.writer = writer
        if self.lease is not None and self.lease.lost.is_set():
            writer.fence()
        opened: set[str] = set()

        def open_run(trial: Trial) -> None:
            """Opens (or reopens) the trial's run when Ray starts the trial, so its times are the trial's."""
            tags = {**common, S.TAG_DATASET: trial.config["data"]["dataset"], S.TAG_PROTOCOL: trial.recipe["protocol"]}
            if trial.evaluates:
                tags[S.TAG_EVALUATES] = trial.evaluates
                tags[S.TAG_EVALUATED_CHECKPOINT] = trial.checkpoint or ""
            elif trial.checkpoint:
                tags[S.TAG_INHERITED_CHECKPOINT] = trial.checkpoint
            writer.open_trial(trial, tags, args.rerun)
            opened.add(trial.key)

        limits = {"max_concurrent": args.max_concurrent, "max_failures": args.max_failures}
        storage = Path(args.storage).resolve()

        def run_phase(trials: list[Trial]) -> dict[str, str]:
            return run_trials(trials, writer, open_run, storage, args.address, progress=progress, **limits)

        trainings = [t for t in todo if t.evaluates is None]
        for trial in trainings if not args.rerun else []:  # a --rerun trains from scratch
            if left := left_elsewhere(storage, trial):
                trial.checkpoint = str(left)
                print(f"{trial.name}: resumes from {left} (another study's training of the same key, left unfinished)")
        outcome = run_phase(trainings) if trainings else {}
        evaluations = [t for t in todo if t.evaluates is not None]
        if evaluations and not signals.requested():  # then the evaluation rows, from the finished trainings
            if preparing.exception() is not None:
                why = preparing.exception()
                print(f"evaluation rows not run: the study's MLflow runs could not be prepared: {why}")
            elif ready := self.evaluations_ready(evaluations, outcome, storage, preparing):
                outcome.update(run_phase(ready))
        stopped = signals.requested()
        if stopped:
            signals.ignore()
            stop_ray()  # ends the trials' processes before their runs are closed
        if self.lease is not None and self.lease.lost.is_set():  # the other driver's runs and journal now
            writer.close()
            raise self.lease.lost_error()
        failed = [t for t in todo if outcome.get(t.key) != "finished"]
        for t in (t for t in failed if t.key not in outcome and t.key in opened):
            reason = "not completed: the run was interrupted"
            if stopped:
                reason = f"stopped by {stopped} before it finished; the same command resumes it"
            writer.submit("kill" if stopped else "fail", key=t.key, reason=reason)
        writer.submit(
            "end_parent", status=S.STATUS_KILLED if stopped else S.STATUS_FAILED if failed else S.STATUS_FINISHED
        )
        left = writer.flush(args.mlflow_wait)
        writer.close()
        if writer.error is not None:
            print(
                f"MLflow writes stopped: {type(writer.error).__name__}: {writer.error}; {left} write(s) are kept in "
                f"{journal.path}; the next invocation (the same command) applies them first",
                file=sys.stderr,
            )
            return stopped.exit_code if stopped else EXIT_STORE_DOWN
        if left:
            print(
                f"MLflow ({self.uri}) did not answer: {left} write(s) are kept in {journal.path}; the next "
                "invocation (the same command) applies them first",
                file=sys.stderr,
            )
            return stopped.exit_code if stopped else EXIT_STORE_DOWN
        journal.clear_if_done()
        if stopped:
            raise stopped
        tracker = preparing.result()
        self.ensembles(tracker)
        print(browse_hint(self.uri, tracker.experiment_id))
        note = self.waiting_note(waits=not failed) if self.waiting else None  # a failure ends it: exit 1
        if note:
            print(note, file=sys.stderr)
        if failed:
            print(f"{len(failed)} trial(s) failed: " + ", ".join(t.name for t in failed), file=sys.stderr)
            return EXIT_FAILED_TRIALS
        return EXIT_WAITING if self.waiting else EXIT_OK

    def evaluations_ready(
        self, evaluations: list[Trial], outcome: dict[str, str], storage: Path, preparing: Future
    ) -> list[Trial]:
        """``with_checkpoints``; none where MLflow does not answer now (the evaluations are not run, said; the
        trainings' writes wait in the journal and the driver exits 3: the same command evaluates them)."""
        try:
            return self.with_checkpoints(evaluations, outcome, storage, preparing)
        except Exception as err:
            if not transient(err):
                raise
            first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            print(f"evaluation rows not run: MLflow ({self.uri}) does not answer ({first}); the same command runs them")
            return []

    def with_checkpoints(
        self, evaluations: list[Trial], outcome: dict[str, str], storage: Path, preparing: Future
    ) -> list[Trial]:
        """The evaluations whose training has a final checkpoint, each given its path: the training's working
        folder when it ran now, else its FINISHED run's checkpoint tag (cached here or reused)."""
        from runners.scheduler import workdir_of

        trainings = {t.key: t for t in self.trials if t.evaluates is None}
        runs = preparing.result().trial_runs()
        ready = []
        for trial in evaluations:
            training = trainings[trial.evaluates]
            path = workdir_of(storage, training) / "checkpoints" / "last.pt"
            finished = [r for r in runs.get(training.key, []) if r.info.status == S.STATUS_FINISHED]
            if outcome.get(training.key) != "finished" and finished:
                path = Path(finished[0].data.tags.get(S.TAG_CHECKPOINT, path))
            if outcome.get(training.key, "finished") == "finished" and path.is_file():
                trial.checkpoint = str(path)
                ready.append(trial)
            else:
                print(f"{trial.name}: not evaluated: its training {training.name} has no final checkpoint")
        return ready

    def ensembles(self, tracker) -> None:
        """Logs the spec's ensemble rows whose members are all FINISHED (``runners.ensembles``)."""
        if not any(r.ensemble for r in self.spec.rows):
            return
        from runners.ensembles import run_ensembles

        planned = {(t.row.id, t.column, t.seed): t.key for t in self.trials}
        for name, state in run_ensembles(self.spec, planned, tracker).items():
            self._print_once(f"ensemble {name}: {state}", sys.stderr if state.startswith("failed") else sys.stdout)

    def _print_once(self, note: str | None, stream=None) -> None:
        """Prints a note (on stderr by default) unless an earlier invocation of the same ``--wait`` printed it."""
        if note and note not in self.said:
            self.said.add(note)
            print(note, file=stream or sys.stderr)


def _all_trials(count: int) -> str:
    """ "the 1 trial", "all 5 trials"."""
    return "the 1 trial" if count == 1 else f"all {count} trials"


def fresh_store(uri: str) -> bool:
    """Whether ``uri`` is a sqlite store that does not exist yet (then no trial can be cached)."""
    path = sqlite_path(uri)
    return path is not None and not path.exists()


def shell_command(argv: list[str]) -> str:
    """The command line that runs the study again (printed as the resume hint), in the form it was started in
    (``ean-run ...`` or ``python -m runners.run ...``)."""
    return " ".join([command_name("python -m runners.run"), *(shlex.quote(a) for a in argv)])


def browse_hint(uri: str, experiment_id: str) -> str:
    """Where to see the study's runs: the UI's page of the experiment, in its model-training view."""
    page = f"#/experiments/{experiment_id}?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"runs: {uri.rstrip('/')}/{page}"
    return f"runs: mlflow ui --backend-store-uri {uri}, then http://127.0.0.1:5000/{page}"


def _node_resources() -> list[dict[str, float]]:
    """Each alive node's total resources in the Ray this driver joined or started."""
    import ray

    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def _cluster_resources() -> dict[str, float] | None:
    """The resources of the Ray this driver joined or started (what the scheduler's default counts), or None."""
    import ray

    return dict(ray.cluster_resources()) if ray.is_initialized() else None
