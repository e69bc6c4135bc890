"""Overhead of the study runner: a study of 8 trials at concurrency 2 against the same trial functions
run without the orchestrator, and the time of a fully cached re-run, measured in one run. The study is
also run with 16 trials, which splits the overhead into a fixed start-up (a local Ray, the MLflow store)
and a marginal cost per trial.

The reference runs ``ean.train.fit`` on the 8 resolved trial configs in a pool of 2 processes (no Ray, no
MLflow). The orchestrated run is ``python -m runners.run`` on the same study (a local Ray started by the
run, a fresh sqlite MLflow store, the table at the end). Trials are tiny on purpose (synthetic data,
ResNet-18 at 64 px, 2 steps) so that the overhead shows.

    python benchmarks/orchestration.py
"""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OVERRIDES = [
    "data=synthetic",
    "trainer=smoke",
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
    from reports.spec import load_spec
    from runners.plan import build_plan

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
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def main() -> None:
    import os

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
    marginal = ((o16 - o8) - (d16 - d8)) / 8
    fixed = (o8 - d8) - 8 * marginal
    print("study of 8 tiny trials at concurrency 2 (2-core CPU; 16 trials for the split)")
    print(f"{'trial functions alone (process pool of 2), 8 trials':56} {d8:7.1f} s   1.00x")
    print(f"{'python -m runners.run (Ray + MLflow), 8 trials':56} {o8:7.1f} s   {o8 / d8:.2f}x")
    print(f"{'  overhead per trial, all of it spread over 8 trials':56} {(o8 - d8) / 8:7.2f} s")
    print(f"{'  of which fixed start-up (Ray, MLflow store, planning)':56} {fixed:7.1f} s")
    print(f"{'  marginal overhead per added trial (16 vs 8 trials)':56} {marginal:7.2f} s")
    print(f"{'fully cached re-run of the 8':56} {cached:7.1f} s   {cached / d8:.2f}x")


if __name__ == "__main__":
    main()
