"""Overhead of the study runner: a study of 8 trials at concurrency 2 against the same trial functions
run without the orchestrator, and the time of a fully cached re-run, measured in one run. The study is
also run with 16 trials, which splits the overhead into a fixed start-up (a local Ray, the MLflow store)
and a marginal cost per trial.

The reference runs ``ean.train.fit`` on the 8 resolved trial configs in a pool of 2 processes (no Ray, no
MLflow). The orchestrated run is ``python -m runners.run`` on the same study (a local Ray started by the
run, a fresh sqlite MLflow store, the table at the end). Trials are tiny on purpose (synthetic data,
ResNet-18 at 64 px, 2 steps) so that the overhead shows.

    python benchmarks/orchestration.py            # prints the figures
    python benchmarks/orchestration.py --record   # also writes the "Orchestration" section of RESULTS.md

Figures: benchmarks/RESULTS.md, section "Orchestration".
"""

from __future__ import annotations

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
    "data.num_videos=24",
    "data.size=64",
    "trainer.epochs=1",
    "trainer.max_steps_per_epoch=2",
]
ROWS = ["none", "s_block", "l_block", "incep_block"]
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


def direct(spec_path: Path, work: Path) -> float:
    """The trials' fit functions in a pool of 2 processes: no Ray, no MLflow."""
    from runners.plan import build_plan
    from study.spec import load_spec

    spec = load_spec(spec_path)
    trials = build_plan(spec, [], [], list(spec.seeds), work)
    jobs = [(t.config, str(work / "direct" / t.key)) for t in trials]
    _fit(jobs[0])  # generate the synthetic data outside the measurement
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_fit, jobs)
    return time.perf_counter() - start


def orchestrated(spec_path: Path, work: Path, store: str = "mlflow.db") -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "runners.run", str(spec_path), "--max-concurrent", "2", "--mlflow-uri",
           f"sqlite:///{work / store}", "--storage", str(work / "runs"), "--no-report"]  # fmt: skip
    subprocess.run(cmd, cwd=work, check=True, capture_output=True, env=_env())
    return time.perf_counter() - start


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def report(d8: float, d16: float, o8: float, o16: float, cached: float, command: str) -> str:
    """The figures as the Markdown section of RESULTS.md (ratios against the reference of this run)."""
    marginal = ((o16 - o8) - (d16 - d8)) / 8
    fixed = (o8 - d8) - 8 * marginal
    rows = [
        ("trial functions alone (process pool of 2), 8 trials", d8, f"{1:.2f}x"),
        ("`python -m runners.run` (local Ray + sqlite MLflow), 8 trials at concurrency 2", o8, f"{o8 / d8:.2f}x"),
        ("overhead per trial, all of it spread over the 8 trials", (o8 - d8) / 8, ""),
        ("of which fixed start-up (Ray, MLflow store, imports, planning, shutdown)", fixed, ""),
        ("marginal overhead per added trial (16 trials vs 8)", marginal, ""),
        ("fully cached re-run of the 8", cached, f"{cached / d8:.2f}x"),
    ]
    lines = [
        "## Orchestration (runners, issue 6)",
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores): "
        "tiny trials (synthetic data, ResNet-18 at 64 px, 1 epoch of 2 steps) so that the overhead shows; the "
        "reference runs the same `ean.train.fit` calls in a process pool of 2; each figure is measured in this run.",
        "",
        "| | wall | ratio |",
        "|---|---|---|",
        *(f"| {name} | {value:.2f} s | {ratio} |" for name, value, ratio in rows),
        "",
        f"Goals (issue 6): under 1 s of overhead per trial: {marginal:.2f} s per added trial "
        f"({'met' if marginal < 1 else 'NOT met'}; trial processes are reused), {(o8 - d8) / 8:.2f} s per trial "
        f"with the fixed start-up spread over only 8 tiny trials; a cached re-run under 10 s: {cached:.1f} s "
        f"({'met' if cached < 10 else 'NOT met'}).",
    ]
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        small, large = work / "bench8.yaml", work / "bench16.yaml"
        small.write_text(yaml.safe_dump(spec(SEEDS)))
        large.write_text(yaml.safe_dump({**spec([0, 1, 2, 3]), "name": "bench16"}))
        d8, d16 = direct(small, work), direct(large, work)
        o8 = orchestrated(small, work)
        cached = orchestrated(small, work)
        o16 = orchestrated(large, work, store="mlflow16.db")
    command = "python benchmarks/orchestration.py" + (" --record" if args.record else "")
    text = report(d8, d16, o8, o16, cached, command)
    print(text)
    if args.record:
        record_section("orchestration", text)


if __name__ == "__main__":
    main()
