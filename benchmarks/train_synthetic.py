"""Does the pipeline learn? A short training on the synthetic dataset on CPU, top-1 against chance.

Trains a small model (ResNet-18 backbone with the baseline's temporal conv and motion excitation, 8 segments,
32 x 32 crops, no EAB or SOI-Tr) from scratch with ``ean.train.fit`` on the synthetic dataset (generated on
first use), then prints the validation top-1 (1 clip x centre crop) next to chance (1 / classes). It also
measures what the deterministic mode costs: training clips/s of one short epoch with and without it,
measured in the same run, printed as a ratio.

    python benchmarks/train_synthetic.py                      # about 2-3 minutes on 2 shared CPU cores
    python benchmarks/train_synthetic.py --record             # also writes the "Training" section of RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch

from ean.train import fit

MARK_START, MARK_END = "<!-- training:start -->", "<!-- training:end -->"


def run_config(args: argparse.Namespace, **trainer) -> dict:
    return {
        "model": {
            "backbone": "resnet18",
            "num_segments": args.segments,
            "input_size": args.size,
            "block": "none",
            "regions": "none",
            "num_classes": args.classes,
            "dropout": 0.2,
        },
        "data": {
            "dataset": "synthetic",
            "root": args.root,
            "num_videos": args.videos,
            "num_classes": args.classes,
            "size": args.size,
            "resize": [args.size, round(args.size * 4 / 3 / 2) * 2],
            "scales": [1.0, 0.875],
            "num_workers": 0,
            "decode_timeout_s": 0,
        },
        "trainer": {
            "epochs": args.epochs,
            "batch_size": 8,
            "lr": args.lr,
            "schedule": "cosine",
            "warmup_epochs": 1,
            "num_threads": args.threads,
            **trainer,
        },
        "seed": args.seed,
    }


def learn(args: argparse.Namespace) -> dict:
    """Trains for ``args.epochs`` epochs; returns fit's result with the wall time and the last epoch's train top-1."""
    reports = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        result = fit(run_config(args), workdir, reporter=reports.append)
    result["seconds"] = time.perf_counter() - start
    epochs = [r for r in reports if not r["done"]]
    result["curve"] = [(r["epoch"], r["metrics"]["train_top1"], r["metrics"].get("val_top1")) for r in epochs]
    return result


def determinism_cost(args: argparse.Namespace, steps: int = 8) -> tuple[float, float]:
    """Training clips/s of one epoch of ``steps`` steps without and with the deterministic mode."""
    rates = []
    for deterministic in (False, True):
        reports = []
        config = run_config(args, epochs=1, max_steps_per_epoch=steps, deterministic=deterministic)
        with tempfile.TemporaryDirectory() as workdir:
            fit(config, workdir, reporter=reports.append)
        rates.append(reports[0]["metrics"]["clips_per_s"])
    return rates[0], rates[1]


def report(args: argparse.Namespace, result: dict, rates: tuple[float, float] | None) -> str:
    chance = 100.0 / args.classes
    command = "python benchmarks/train_synthetic.py" + (" --record" if args.record else "")
    lines = [
        "## Training (ean.train, issue 5)",
        "",
        f"Command: `{command}`. Machine: {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}, {args.threads} torch thread(s), CPU only, fp32. Synthetic dataset: {args.videos} "
        f"videos of {args.classes} classes, {args.size} pixels high; model ResNet-18 + temporal conv + ME, "
        f"{args.segments} segments, {args.size} x {args.size} crops, from scratch; SGD momentum 0.9, lr {args.lr}, "
        "cosine with 1 warm-up epoch, batch 8, "
        f"{args.epochs} epochs, seed {args.seed}.",
        "",
        f"- Validation top-1 (1 clip x centre crop, {result['num_videos']} videos): **{result['top1']:.1f}%**, "
        f"chance {chance:.1f}% ({result['top1'] / chance:.1f}x chance); top-5 {result['top5']:.1f}%.",
        f"- Goal of issue 5 (top-1 at least 2x chance within 120 s): "
        f"{'met' if result['top1'] >= 2 * chance and result['seconds'] <= 120 else 'NOT met'}.",
        f"- Wall time of the whole run (data generation excluded when cached, evaluation included): "
        f"{result['seconds']:.0f} s.",
        "- Per epoch (train top-1 %, val top-1 %): "
        + ", ".join(f"{e}: {t:.0f}/{v:.0f}" for e, t, v in result["curve"] if v is not None),
    ]
    if rates:
        lines.append(
            f"- Deterministic mode (`trainer.deterministic: true`) on CPU: {rates[1]:.1f} clips/s against "
            f"{rates[0]:.1f} without ({rates[1] / rates[0]:.2f}x), one epoch of 8 steps each, same run."
        )
    return "\n".join(lines)


def record(text: str, path: str) -> None:
    """Replaces (or appends) the training section of RESULTS.md, keeping every other section."""
    old = "# Benchmark results\n"
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    block = f"{MARK_START}\n{text}\n{MARK_END}"
    if MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_START, 1)
        new = head + block + rest.split(MARK_END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(), "ean-synthetic-train-bench"))
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", type=int, default=32, help="frame height and crop side (a multiple of 32)")
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-determinism", action="store_true", help="do not measure the deterministic mode")
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    args = parser.parse_args()
    result = learn(args)
    rates = None if args.skip_determinism else determinism_cost(args)
    text = report(args, result, rates)
    print(text)
    if args.record:
        record(text, os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"))


if __name__ == "__main__":
    main()
