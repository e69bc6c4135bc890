"""List every unreadable video or frame folder of a dataset.

    python -m ean.data.check --dataset something_v2 --root /data/sthv2 [--split val] [--full] [--workers 4]

Opens every file of the split(s), decodes the frames a test clip uses plus the last frame (``--full``: every
frame), each with a timeout, compares a video's readable frames with those its header declares (a file cut
short behind an intact header), and prints ``path<TAB>reason`` per bad file on stdout (progress on stderr).
Exit status: 0 when every file reads, 1 when some do not, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import sys

from torch.utils.data import DataLoader, Dataset

from ean.data.builder import build_dataset
from ean.data.cli_common import INPUT_ERRORS, Progress, add_dataset_arguments, data_config, number_in
from ean.data.errors import DataError
from ean.data.registry import DATASETS


class _CheckItems(Dataset):
    """Item i: (i, reason or None) for file i of a dataset (runs in DataLoader workers)."""

    def __init__(self, dataset, full: bool):
        self.dataset, self.full = dataset, full

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return index, self.dataset.check_file(index, self.full)


def _as_list(batch):
    return batch


def bad_files(dataset, full: bool = False, workers: int = 0, label: str = "checked") -> dict[str, str]:
    """path -> reason for every file of ``dataset`` that cannot be read."""
    loader = DataLoader(_CheckItems(dataset, full), batch_size=1, num_workers=workers, collate_fn=_as_list)
    progress, found = Progress(len(dataset), label), {}
    for done, [(index, reason)] in enumerate(loader, 1):
        if reason is not None:
            found[dataset.records[index].path] = reason
        progress.update(done, f", {len(found)} bad")
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ean.data.check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataset_arguments(parser)
    parser.add_argument("--split", choices=["train", "val", "all"], default="all", help="which split (default all)")
    parser.add_argument("--full", action="store_true", help="decode every frame (slow), not only a test clip's")
    parser.add_argument(
        "--workers", type=number_in(int, 0), default=0, help="worker processes (default 0: this process)"
    )
    parser.add_argument(
        "--timeout",
        type=number_in(float, 0),
        default=30.0,
        help="seconds before a decode counts as hung (default 30; 0: decode in this process, no timeout)",
    )
    return parser.parse_args(argv)


def refuse_generated(name: str, root: str) -> None:
    """DataError for a dataset whose files are generated on first use (synthetic): reading it would write them.

    Raises:
        UnknownNameError: no dataset ``name``.
    """
    if getattr(DATASETS.get(name), "GENERATED", False):
        raise DataError(
            f"dataset {name!r} is generated (by the runner, under its root, on first use), not checked: reading it "
            f"here would write it. To check videos already generated under {root}: --dataset something_v2 "
            "--set video_ext=.mp4"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    splits = ["train", "val"] if args.split == "all" else [args.split]
    found = {}
    try:
        refuse_generated(args.dataset, args.root)
        for split in splits:
            dataset = build_dataset(data_config(args, decode_timeout_s=args.timeout), split)
            found.update(bad_files(dataset, args.full, args.workers, f"{split}"))
    except INPUT_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path, reason in found.items():
        print(f"{path}\t{reason}")
    print(f"{len(found)} bad file(s)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
