"""Cost of merging BatchNorm's running averages over W ranks, against the training pass it follows.

``ean.train.running_stats`` gathers every rank's running averages after each forward pass and merges them
into one device's. This script times that merge on EAN 8F RGB+LMC (state captured, W copies stacked as an
all-gather would return them, weights computed, averages written back) against one train-mode forward and
backward pass of the same network, measured round-robin in one run, and prints the median of the paired
ratios. The all-gather's transfer itself (W x the numbers below, float64) is not timed: it has no network here.

    python benchmarks/running_stats.py                  # CPU, 2 threads, 1 clip per pass, W = 8
    python benchmarks/running_stats.py --device cuda --clips 8

Figures: benchmarks/RESULTS.md, section "BatchNorm averages over ranks" (written there by hand).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ean.models import build_model, frames_per_segment
from ean.train.running_stats import PassOrderRunningStats


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on CPU (2)")
    parser.add_argument("--clips", type=int, default=1, help="clips per forward pass (1)")
    parser.add_argument("--ranks", type=int, default=8, help="W, the ranks whose averages are merged (8)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (5)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = {"modality": "rgb_lmc", "num_classes": 174}
    model = build_model(config).to(device).train()
    clips = torch.randn(args.clips, 8, frames_per_segment(config), 3, 224, 224, device=device)
    stats = PassOrderRunningStats(model, args.ranks, lambda state: state[None].expand(args.ranks, -1).clone())

    def train_pass() -> None:
        model(clips).sum().backward()

    def merge() -> None:
        stats.before_pass()
        stats.after_pass()

    train_pass(), merge()  # warm-up
    ratios, passes, merges = [], [], []
    for _ in range(args.repeats):
        passes.append(_timed(train_pass, device))
        merges.append(_timed(merge, device))
        ratios.append(merges[-1] / passes[-1])
    numbers = sum(2 * m.num_features + 1 for m in stats.modules)
    print(f"EAN 8F RGB+LMC on {device}, {args.clips} clip(s) per pass, W = {args.ranks}, {args.repeats} rounds")
    print(f"BatchNorm layers merged: {len(stats.modules)}, numbers per rank: {numbers}")
    print("| | median s | ratio |\n|---|---|---|")
    print(f"| train pass (forward + backward), reference | {statistics.median(passes):.4f} | 1.00x |")
    print(f"| merge of the running averages | {statistics.median(merges):.5f} | {statistics.median(ratios):.4f}x |")


if __name__ == "__main__":
    main()
