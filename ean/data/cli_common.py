"""Shared argument handling of the data command lines (check, to_frames)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable

import yaml

from ean.data.errors import DataError
from ean.data.registry import DATASETS
from ean.registry import UnknownNameError

#: The errors of a data command's input (a bad --dataset, --root or --set): ``error: <message>``, exit status 2.
INPUT_ERRORS = (DataError, UnknownNameError)


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
    """The data config dict of the parsed arguments.

    Raises:
        DataError: a ``--set`` item that is not KEY=VALUE, or whose value is not YAML.
    """
    cfg = {"dataset": args.dataset, "root": args.root, **extra}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"--set expects KEY=VALUE (e.g. --set media=frames), got {item!r}")
        cfg[key.strip()] = _yaml_value(item, value)
    return cfg


def _yaml_value(item: str, value: str):
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or type(err).__name__
        raise DataError(f"--set {item}: the value is not YAML ({problem})") from None


def number_in(kind: type, low: float, high: float | None = None) -> Callable[[str], float]:
    """An argparse ``type``: ``kind`` (int or float) of the text, refused unless finite and in [low, high]."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            bounds = f"{low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


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
