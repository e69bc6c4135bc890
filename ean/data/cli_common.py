"""Shared argument handling of the data command lines (check, to_frames)."""

from __future__ import annotations

import argparse
import sys
import time

import yaml

from ean.data.registry import DATASETS


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """--dataset, --root and --set KEY=VALUE (any data config key, e.g. --set media=frames)."""
    parser.add_argument("--dataset", required=True, help=f"dataset name: {', '.join(DATASETS.names())}")
    parser.add_argument("--root", required=True, help="data root holding the dataset in its official layout")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="extra data config key (YAML value), e.g. --set media=frames --set train_list=train.txt; repeatable",
    )


def data_config(args: argparse.Namespace, **extra) -> dict:
    """The data config dict of the parsed arguments."""
    cfg = {"dataset": args.dataset, "root": args.root, **extra}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        cfg[key.strip()] = yaml.safe_load(value)
    return cfg


class Progress:
    """Prints 'done/total' to stderr at most every ``every_s`` seconds, and at the end."""

    def __init__(self, total: int, label: str, every_s: float = 2.0):
        self.total, self.label, self.every_s = total, label, every_s
        self.start = self.last = time.monotonic()

    def update(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s or done == self.total:
            rate = done / max(now - self.start, 1e-9)
            print(f"{self.label}: {done}/{self.total} ({rate:.1f}/s){extra}", file=sys.stderr, flush=True)
            self.last = now
