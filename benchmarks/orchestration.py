"""Overhead of the study runner: a study of 8 trials at concurrency 2 against the same trial functions
run without the orchestrator, measured in one run: the whole study, the time to the first trial's first
training step, a fully cached re-run (with and without its table), a dry run (with a cold and a warm on-disk
cache), and a dry run of each paper study (smoke profile; cold and warm). The study is also run with 16
trials, which splits the overhead into a fixed start-up (a local Ray, the MLflow store) and a marginal cost
per trial.

The reference runs ``ean.train.fit`` on the 8 resolved trial configs in a pool of 2 processes (no Ray, no
MLflow). The orchestrated run is ``python -m runners.run`` on the same study (a local Ray started by the
run, a fresh sqlite MLflow store, the table at the end). Trials are tiny on purpose (synthetic data,
ResNet-18 at 64 px, 2 steps) so that the overhead shows.

    python benchmarks/orchestration.py            # prints the figures
    python benchmarks/orchestration.py --record   # also writes the "Orchestration" section of RESULTS.md
    python benchmarks/orchestration.py --first-step 4 [--record]   # only the first step, 4 fresh studies
    python benchmarks/orchestration.py --ray-start 12 [--record]   # only the local Ray's start, 12 rounds of 3 settings
    python benchmarks/orchestration.py --critical-path 3 [--record]   # only the first step's lower bound, 3 rounds

Figures: benchmarks/RESULTS.md, section "Orchestration".
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from results_file import record_section

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OVERRIDES = [
    "data=synthetic",
    "trainer=smoke",
    "model.pretrained=null",
    "model.backbone=resnet18",
    "model.num_segments=4",
    "model.input_size=64",
    "data.resize=72",
    "data.root=data/bench",  # its own root: the paper studies' smoke profile generates another dataset
    "data.num_videos=24",
    "data.size=64",
    "trainer.epochs=1",
    "trainer.max_steps_per_epoch=2",
]
ROWS = ["none", "s_block", "l_block", "incep_block"]
PAPER_STUDIES = [f"table{n}" for n in range(1, 11)]
SEEDS = [0, 1]


def spec(seeds: list[int] = SEEDS) -> dict:
    rows = [{"id": b, "label": b, "overrides": [f"block={b}", "regions=none"]} for b in ROWS]
    return {
        "name": "bench",
        "title": "orchestration benchmark",
        "overrides": OVERRIDES,
        "seeds": seeds,
        "protocol": {"clips": 1, "crops": 1},
        "columns": ["params", "top1"],
        "rows": rows,
    }


def _fit(args: tuple[dict, str]) -> float:
    from ean.train import fit

    config, workdir = args
    fit({k: v for k, v in config.items() if k != "resources"}, workdir)
    return 0.0


def direct(spec_path: Path, work: Path) -> tuple[float, float]:
    """The trials' fit functions in a pool of 2 processes, no Ray, no MLflow: (wall, time to the first step)."""
    from runners.plan import build_plan
    from study.spec import load_spec

    spec = load_spec(spec_path)
    trials = build_plan(spec, [], [], list(spec.seeds), work)
    jobs = [(t.config, str(work / "direct" / spec.name / t.key)) for t in trials]
    _fit((jobs[0][0], str(work / "warm-up")))  # generate the synthetic data outside the measurement
    start, wall = time.time(), time.perf_counter()
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_fit, jobs)
    return time.perf_counter() - wall, _first_start(work / "direct" / spec.name) - start


def orchestrated(spec_path: Path, work: Path, store: str = "mlflow.db", *extra: str) -> tuple[float, float]:
    """``python -m runners.run`` on the study: (wall, time to the first trial's first step; nan if none ran)."""
    start, wall = time.time(), time.perf_counter()
    cmd = [sys.executable, "-m", "runners.run", str(spec_path), "--max-concurrent", "2", "--mlflow-uri",
           f"sqlite:///{work / store}", "--storage", str(work / "runs"), *(extra or ["--no-report"])]  # fmt: skip
    subprocess.run(cmd, cwd=work, check=True, capture_output=True, env=_env())
    name = yaml.safe_load(spec_path.read_text())["name"]
    return time.perf_counter() - wall, _first_start(work / "runs" / name, start) - start


def _first_start(folder: Path, after: float = 0.0) -> float:
    """The earliest trial start (``ean.train``'s start records) under ``folder`` after ``after``."""
    from ean.train import read_starts

    times = [s["time"] for d in folder.glob("*") if d.is_dir() for s in read_starts(d) if s["time"] >= after]
    return min(times, default=float("nan"))


def dry_run(spec_path: Path, work: Path, cache: Path, *extra: str) -> float:
    """``--dry-run`` of the study with the on-disk cache in ``cache``."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "runners.run", str(spec_path), "--dry-run", "--mlflow-uri",
           f"sqlite:///{work / 'mlflow.db'}", *extra]  # fmt: skip
    subprocess.run(cmd, cwd=work, check=True, capture_output=True, env={**_env(), "EAN_CACHE_DIR": str(cache)})
    return time.perf_counter() - start


def paper_dry_runs(work: Path) -> list[tuple[str, float, float]]:
    """``--dry-run --profile smoke`` of each paper study with a cold, then a warm on-disk cache (the store of
    the 8 present): (study, cold, warm)."""
    from study.find import find_spec

    out = []
    for study in PAPER_STUDIES:
        cache = work / f"paper-cache-{study}"
        spec = find_spec(study)
        times = [dry_run(spec, work, cache, "--profile", "smoke") for _ in range(2)]
        out.append((study, *times))
    return out


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def report(
    d8, d16, o8, o16, cached: tuple[float, float], cached_table: float, dry: tuple[float, float], paper, command: str
) -> str:
    """The figures as the Markdown section of RESULTS.md (ratios against the reference of this run)."""
    (d8, first_direct), (d16, _), (o8, first), (o16, _) = d8, d16, o8, o16
    cached_asked, cached = cached
    marginal = ((o16 - o8) - (d16 - d8)) / 8
    slowest = max(warm for _, _, warm in paper)
    fixed = (o8 - d8) - 8 * marginal
    rows = [
        ("trial functions alone (process pool of 2), 8 trials", d8, f"{1:.2f}x"),
        ("`python -m runners.run` (local Ray + sqlite MLflow), 8 trials at concurrency 2", o8, f"{o8 / d8:.2f}x"),
        ("overhead per trial, all of it spread over the 8 trials", (o8 - d8) / 8, ""),
        ("of which fixed start-up (Ray, MLflow store, imports, planning, shutdown)", fixed, ""),
        ("marginal overhead per added trial (16 trials vs 8)", marginal, ""),
        ("first training step after start: trial functions alone", first_direct, f"{1:.2f}x"),
        ("first training step after start: `python -m runners.run`", first, f"{first / first_direct:.2f}x"),
        (
            "fully cached re-run of the 8 (`--no-report`), the first after training: MLflow asked",
            cached_asked,
            f"{cached_asked / d8:.2f}x",
        ),
        ("fully cached re-run of the 8 (`--no-report`), the store unchanged since", cached, f"{cached / d8:.2f}x"),
        ("fully cached re-run of the 8, table written (figures reused)", cached_table, f"{cached_table / d8:.2f}x"),
        ("`--dry-run` of the 8, cold on-disk cache", dry[0], f"{dry[0] / d8:.2f}x"),
        ("`--dry-run` of the 8, warm on-disk cache", dry[1], f"{dry[1] / d8:.2f}x"),
    ]
    lines = [
        "## Orchestration (runners, issues 6 and 20)",
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores): "
        "tiny trials (synthetic data, ResNet-18 at 64 px, 1 epoch of 2 steps) so that the overhead shows; the "
        "reference runs the same `ean.train.fit` calls in a process pool of 2; each figure is measured in this run.",
        "",
        "| | wall | ratio |",
        "|---|---|---|",
        *(f"| {name} | {value:.2f} s | {ratio} |" for name, value, ratio in rows),
        "",
        "The store unchanged since the last read (the rows after the first cached re-run, and the warm dry runs), "
        "a study reads what it read then instead of asking MLflow (`runners/store_reads.py`).",
        "",
        "`--dry-run --profile smoke` of each paper study (the store of the 8 present), cold then warm on-disk cache:",
        "",
        "| study | cold | warm | warm / cold |",
        "|---|---|---|---|",
        *(f"| {study} | {cold:.2f} s | {warm:.2f} s | {warm / cold:.2f}x |" for study, cold, warm in paper),
        "",
        f"Goals: under 1 s of overhead per added trial (issue 6): {marginal:.2f} s "
        f"({'met' if marginal < 1 else 'NOT met'}); issue 20: a study with nothing to train ends, table written, "
        f"within 3 s: {cached_table:.1f} s ({'met' if cached_table <= 3 else 'NOT met'}); a dry run within 3 s: "
        f"{dry[1]:.1f} s warm, paper studies at most {slowest:.1f} s warm "
        f"({'met' if max(dry[1], slowest) <= 3 else 'NOT met'}); the first step within 5 s of start-up: "
        f"{first:.1f} s ({'met' if first <= 5 else 'NOT met'}).",
    ]
    return "\n".join(lines)


def first_step(work: Path, repeats: int, command: str) -> str:
    """Only the time to the first step: the reference once, then ``repeats`` fresh studies (a new store and
    storage each, the plan cache warm); the section ``first_step`` of RESULTS.md."""
    small = work / "bench8.yaml"
    small.write_text(yaml.safe_dump(spec(SEEDS)))
    _, reference = direct(small, work)
    dry_run(small, work, work / "cache")  # the plan cache, warm as for a study planned before
    firsts, env = [], {**_env(), "EAN_CACHE_DIR": str(work / "cache")}
    for i in range(repeats):
        cmd = [sys.executable, "-m", "runners.run", str(small), "--max-concurrent", "2", "--no-report",
               "--mlflow-uri", f"sqlite:///{work / f'first{i}.db'}", "--storage", str(work / f"first{i}")]  # fmt: skip
        start = time.time()
        subprocess.run(cmd, cwd=work, check=True, capture_output=True, env=env)
        firsts.append(_first_start(work / f"first{i}" / "bench", start) - start)
    median = sorted(firsts)[len(firsts) // 2]
    runs = ", ".join(f"{f:.2f}" for f in firsts)
    return (
        f"`{command}` (8 trials at concurrency 2, a fresh store and storage each run, the plan cache warm):\n\n"
        "| | first training step after start | ratio |\n|---|---|---|\n"
        f"| trial functions alone (process pool of 2) | {reference:.2f} s | 1.00x |\n"
        f"| `python -m runners.run`, median of {repeats} ({runs} s) | {median:.2f} s | {median / reference:.2f}x |\n"
        f"\nGoal (issue 20): within 5 s: {median:.1f} s ({'met' if median <= 5 else 'NOT met'})."
    )


RAY_START_PROBE = """
import contextlib, sys, time
from runners import local_ray
from runners.local_ray import start_ray, use_local_ray_settings
use_local_ray_settings()
import ray
if sys.argv[1:] == ["ray-wait"]:  # Ray's own wait for the raylet's registration, not the runner's poll
    local_ray.registration_polled = contextlib.nullcontext
begin = time.perf_counter()
start_ray(None)
print(time.perf_counter() - begin)
ray.shutdown()
"""
RAY_DEFAULT_RETRY = {
    "RAY_raylet_client_connect_timeout_milliseconds": "1000",
    "RAY_raylet_client_num_connect_attempts": "10",
}


RAY_START_VARIANTS = {  # name: (environment, probe arguments); the first is the reference
    "Ray's connect retry (1000 ms x 10) and node wait (1 s)": (RAY_DEFAULT_RETRY, ["ray-wait"]),
    "the runner's connect retry (50 ms x 200), Ray's node wait": ({}, ["ray-wait"]),
    "the runner's connect retry and node poll (20 ms)": ({}, []),
}


def ray_start(pairs: int, command: str) -> str:
    """``start_ray`` of the runner (``runners.local_ray``) in fresh interpreters: with Ray's own connect retry
    (every 1000 ms) and wait for the raylet's registration (every 1 s), with the runner's retry only, and as the
    runner starts it, in turn; the section ``ray_start`` of RESULTS.md."""
    base = {k: v for k, v in _env().items() if not k.startswith("RAY_")}
    times: dict[str, list[float]] = {name: [] for name in RAY_START_VARIANTS}
    for _ in range(pairs):
        for name, (extra, argv) in RAY_START_VARIANTS.items():
            out = subprocess.run([sys.executable, "-c", RAY_START_PROBE, *argv], env={**base, **extra},
                                 capture_output=True, text=True, check=True)  # fmt: skip
            times[name].append(float(out.stdout.split()[-1]))
    reference = sorted(times[next(iter(times))])[pairs // 2]
    fastest = min(min(values) for values in times.values())
    rows = []
    for name, values in times.items():
        median, slow = sorted(values)[pairs // 2], sum(v > fastest + 0.5 for v in values)
        rows.append(f"| {name} | {median:.2f} s | {median / reference:.2f}x | {sum(values) / pairs:.2f} s | "
                    f"{slow} of {pairs} | {max(values):.2f} s |")  # fmt: skip
    return (
        f"`{command}` (`ray.init` of the study's local Ray in a fresh interpreter, the settings in turn):\n\n"
        "| settings | median | ratio | mean | over 0.5 s above the fastest start | slowest |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows)
    )


TRIAL_PROCESS_PROBE = """
import json, sys, time
import ray
begin = time.time()  # a worker Ray starts has imported Ray; from here on, what a trial's process does alone
import ray.tune
from ean.train import fit
config, workdir = json.loads(sys.argv[1]), sys.argv[2]
print(begin)
fit(config, workdir)
"""


def critical_path(work: Path, repeats: int, command: str) -> str:
    """The two links of a trial's first step under Ray Tune that must come one after the other, each measured
    alone on a quiet machine, against the trial function alone (the reference, once): the local Ray's start as
    the runner starts it (``start_ray`` after its imports, in a fresh interpreter; Ray starts the worker processes
    that run trials when the driver connects, at the end of it), then a trial's process from after its import of
    Ray to its first step (Tune's import, then ``ean.train.fit``). Their sum leaves out everything else before
    a study's first step (the driver's imports, the MLflow store, Tune's scheduling) and all contention for
    the cores: a lower bound. The section ``critical_path`` of RESULTS.md."""
    from ean.train import read_starts
    from runners.plan import build_plan
    from study.spec import load_spec

    small = work / "bench8.yaml"
    small.write_text(yaml.safe_dump(spec(SEEDS)))
    _, reference = direct(small, work)  # also generates the synthetic data
    config = build_plan(load_spec(small), [], [], [0], work)[0].config
    config = {k: v for k, v in config.items() if k != "resources"}
    starts, trials = [], []
    for i in range(repeats):
        out = subprocess.run([sys.executable, "-c", RAY_START_PROBE], env=_env(), capture_output=True, text=True,
                             check=True)  # fmt: skip
        starts.append(float(out.stdout.split()[-1]))
        workdir = work / f"alone{i}"
        out = subprocess.run([sys.executable, "-c", TRIAL_PROCESS_PROBE, json.dumps(config), str(workdir)],
                             env=_env(), capture_output=True, text=True, check=True)  # fmt: skip
        trials.append(min(s["time"] for s in read_starts(workdir)) - float(out.stdout.split()[0]))
    start, trial = sorted(starts)[repeats // 2], sorted(trials)[repeats // 2]
    rows = [
        ("the trial function alone (its process's start to its first step; the reference)", reference),
        (f"the local Ray's start, as the runner starts it, after its imports (median of {repeats})", start),
        (f"a trial's process, from its import of Ray to its first step (median of {repeats})", trial),
        ("the two, one after the other: a lower bound of a study's first step", start + trial),
    ]
    table = "\n".join(f"| {name} | {value:.2f} s | {value / reference:.2f}x |" for name, value in rows)
    verdict = "within" if start + trial <= 5 else "above"
    return (
        f"`{command}` (each alone on a quiet machine, in fresh interpreters):\n\n"
        f"| | time | ratio |\n|---|---|---|\n{table}\n\n"
        f"The lower bound is {verdict} issue 20's 5 s."
    )


def one_part(name: str, measure, rounds: int, record: bool) -> None:
    """Prints (and with ``record`` writes into RESULTS.md's section ``name``) one part's figures, measured by
    ``measure(work folder, rounds, command)`` in a temporary working folder."""
    command = f"python benchmarks/orchestration.py --{name.replace('_', '-')} {rounds}"
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        text = measure(Path(tmp), rounds, command)
    print(text)
    if record:
        record_section(name, text)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    parser.add_argument("--first-step", type=int, metavar="N", help="only the time to the first step, N studies")
    parser.add_argument(
        "--ray-start", type=int, metavar="N", help="only the local Ray's start: N rounds of its 3 settings"
    )
    parser.add_argument(
        "--critical-path", type=int, metavar="N", help="only the first step's lower bound: N rounds of its 2 links"
    )
    args = parser.parse_args()
    parts = {  # the options that measure one part: (its section of RESULTS.md, how it is measured)
        "critical_path": critical_path,
        "ray_start": lambda work, rounds, command: ray_start(rounds, command),
        "first_step": first_step,
    }
    for name, measure in parts.items():
        if getattr(args, name):
            one_part(name, measure, getattr(args, name), args.record)
            return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        small, large = work / "bench8.yaml", work / "bench16.yaml"
        small.write_text(yaml.safe_dump(spec(SEEDS)))
        large.write_text(yaml.safe_dump({**spec([0, 1, 2, 3]), "name": "bench16"}))
        d8, d16 = direct(small, work), direct(large, work)
        o8 = orchestrated(small, work)
        cached_asked, _ = orchestrated(small, work)  # the first after the training: MLflow asked, the reads kept
        cached, _ = orchestrated(small, work)
        orchestrated(small, work, "mlflow.db", "--seeds", "0,1")  # the table's figures, drawn once
        cached_table, _ = orchestrated(small, work, "mlflow.db", "--seeds", "0,1")
        dry = (dry_run(small, work, work / "cold-cache"), dry_run(small, work, work / "cold-cache"))
        paper = paper_dry_runs(work)
        o16 = orchestrated(large, work, "mlflow16.db")
    command = "python benchmarks/orchestration.py" + (" --record" if args.record else "")
    text = report(d8, d16, o8, o16, (cached_asked, cached), cached_table, dry, paper, command)
    print(text)
    if args.record:
        record_section("orchestration", text)


if __name__ == "__main__":
    main()
