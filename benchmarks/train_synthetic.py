"""Does the pipeline learn? A short training on the synthetic dataset on CPU, top-1 against chance.

Generates the synthetic dataset (10 classes, 1200 videos, 32 px, its default cluttered scenes with moving
distractors; ``--clutter 0`` gives plain backgrounds),
then trains a small model (ResNet-18 backbone with the baseline's temporal conv and motion excitation,
2 segments, 32 x 32 crops, no EAB or SOI-Tr) from scratch, once per seed, with ``ean.train.fit`` and prints
the validation top-1 (1 clip x centre crop) next to chance (1 / classes), with the wall time of generation
and of training.
It also measures what the deterministic mode costs: training clips/s of one short epoch with and without
it, measured in the same run, printed as a ratio.

    python benchmarks/train_synthetic.py                      # 2 seeds
    python benchmarks/train_synthetic.py --record             # also writes the "Training" section of RESULTS.md
    python benchmarks/train_synthetic.py --clutter 0          # the same on plain scenes

Figures: benchmarks/RESULTS.md, section "Training".
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch
from results_file import record_section

from ean.train import fit


def run_config(args: argparse.Namespace, seed: int, **trainer) -> dict:
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
            "clutter": args.clutter,
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
            "warmup_epochs": 0,
            "eval_every": args.epochs,  # validate once, at the end: the time goes to training
            "num_threads": args.threads,
            **trainer,
        },
        "seed": seed,
    }


def generate(args: argparse.Namespace) -> float:
    """Writes the synthetic dataset (unless ``args.root`` holds it already); returns the seconds it took."""
    from ean.data import generate_synthetic

    start = time.perf_counter()
    generate_synthetic(
        args.root, num_videos=args.videos, num_classes=args.classes, size=args.size, clutter=args.clutter
    )
    return time.perf_counter() - start


def learn(args: argparse.Namespace, seed: int) -> dict:
    """Trains for ``args.epochs`` epochs; returns fit's result with the wall time and the per-epoch curve."""
    reports = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        result = fit(run_config(args, seed), workdir, reporter=reports.append)
    result["seconds"] = time.perf_counter() - start
    epochs = [r for r in reports if not r["done"]]
    result["curve"] = [(r["epoch"], r["metrics"]["train_top1"], r["metrics"].get("val_top1")) for r in epochs]
    return result


def determinism_cost(args: argparse.Namespace, steps: int = 8) -> tuple[float, float]:
    """Training clips/s of one epoch of ``steps`` steps without and with the deterministic mode."""
    rates = []
    for deterministic in (False, True):
        reports = []
        config = run_config(args, 0, epochs=1, max_steps_per_epoch=steps, deterministic=deterministic)
        with tempfile.TemporaryDirectory() as workdir:
            fit(config, workdir, reporter=reports.append)
        rates.append(reports[0]["metrics"]["clips_per_s"])
    return rates[0], rates[1]


def report(args: argparse.Namespace, results: dict[int, dict], rates: tuple[float, float] | None, gen_s: float) -> str:
    chance = 100.0 / args.classes
    command = "python benchmarks/train_synthetic.py" + (" --record" if args.record else "")
    met = [r["top1"] >= 2 * chance and r["seconds"] + gen_s <= 120 for r in results.values()]
    lines = [
        "## Training (ean.train, issue 5)",
        "",
        f"Command: `{command}`. Machine: {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}, {args.threads} torch thread(s), CPU only, fp32. Synthetic dataset: {args.videos} "
        f"videos of {args.classes} classes (4/5 for training), {args.size} pixels high, clutter {args.clutter:g}; "
        f"model ResNet-18 + temporal conv + ME, {args.segments} segments, {args.size} x {args.size} crops, from "
        f"scratch; SGD momentum 0.9, lr {args.lr}, cosine without warm-up, batch 8, {args.epochs} epochs, "
        "validated once at the end (1 clip x centre crop).",
        "",
        f"Data generation: {gen_s:.0f} s. Goal of issue 5: validation top-1 at least 2x chance ({2 * chance:.0f}%) "
        f"within 120 s, generation included: {'met' if all(met) else 'NOT met'} ({sum(met)}/{len(met)} seeds).",
        "",
        "| seed | val top-1 | x chance | top-5 | training + evaluation | with generation | train top-1 per epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed, r in results.items():
        curve = " / ".join(f"{t:.0f}" for _, t, _ in r["curve"])
        lines.append(
            f"| {seed} | **{r['top1']:.1f}%** | {r['top1'] / chance:.1f}x | {r['top5']:.1f}% | {r['seconds']:.0f} s "
            f"| {r['seconds'] + gen_s:.0f} s | {curve} |"
        )
    if rates:
        lines += [
            "",
            f"Deterministic mode (`trainer.deterministic: true`) on CPU: {rates[1]:.1f} clips/s against "
            f"{rates[0]:.1f} without ({rates[1] / rates[0]:.2f}x), one epoch of 8 steps each, same run.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="dataset folder (default: a fresh temporary one)")
    parser.add_argument("--videos", type=int, default=1200, help="train + validation videos (default 1200)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--clutter", type=float, default=1.0, help="0 plain scenes ... 1 cluttered (default)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=32, help="frame height and crop side (a multiple of 32)")
    parser.add_argument("--segments", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds (default 0,1)")
    parser.add_argument("--skip-determinism", action="store_true", help="do not measure the deterministic mode")
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ean-synthetic-") as tmp:
        args.root = args.root or tmp
        gen_s = generate(args)
        results = {seed: learn(args, seed) for seed in map(int, args.seeds.split(","))}
        rates = None if args.skip_determinism else determinism_cost(args)
    text = report(args, results, rates, gen_s)
    print(text)
    if args.record:
        record_section("training", text)


if __name__ == "__main__":
    main()
