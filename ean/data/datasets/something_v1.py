"""Something-Something V1 as distributed: JPEG frame folders and ``;``-separated CSV annotations.

Layout under ``root`` (the first existing candidate of each is used)::

    something-something-v1-labels.csv | labels.csv               one class name per line, index = line number
    something-something-v1-train.csv | train.csv                 "<id>;<class name>" per line
    something-something-v1-validation.csv | validation.csv
    20bn-something-something-v1/<id>/00001.jpg | frames/<id>/00001.jpg | <id>/00001.jpg
"""

from __future__ import annotations

import os

from ean.data.annotations import Annotations
from ean.data.errors import DataError
from ean.data.layout import check_root, check_split, find_dir, find_file
from ean.data.records import VideoRecord
from ean.data.registry import DATASETS

NAME = "something_v1"
LABEL_FILES = ("something-something-v1-labels.csv", "labels.csv")
LIST_FILES = {
    "train": ("something-something-v1-train.csv", "train.csv"),
    "val": ("something-something-v1-validation.csv", "validation.csv"),
}
FRAME_DIRS = ("20bn-something-something-v1", "frames", ".")


def read_class_names(path: str) -> list[str]:
    """Class names, one per non-empty line."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def read_entries(path: str, class_index: dict[str, int]) -> list[tuple[str, int]]:
    """(video id, label) of every ``id;class name`` line."""
    out = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            vid, sep, name = line.strip().partition(";")
            if not sep or name not in class_index:
                raise DataError(f"{NAME}: {path}:{number}: expected 'id;class name' with a known class, got {line!r}")
            out.append((vid, class_index[name]))
    return out


@DATASETS.register(NAME)
class SomethingV1:
    """Something-Something V1 (174 classes) from its official files (frames, 1-based ``%05d.jpg``).

    Args:
        root: folder holding the frame folders and the CSVs.
        split: ``"train"`` or ``"val"`` (the official validation CSV).
    """

    CLIP_DEFAULTS = {"resize": (240, 320)}  # the Something recipe's working size
    VIDEOS = {"train": 86017, "val": 11522}  # the official lists' sizes (for estimates without the data)

    def __init__(self, root: str, split: str = "train"):
        self.root, self.split = check_root(root, NAME), check_split(split, NAME)

    def read(self) -> Annotations:
        class_names = read_class_names(find_file(self.root, LABEL_FILES, "labels CSV", NAME))
        entries = read_entries(
            find_file(self.root, LIST_FILES[self.split], f"{self.split} CSV", NAME),
            {n: i for i, n in enumerate(class_names)},
        )
        frame_dir = find_dir(self.root, FRAME_DIRS, "frame folder", NAME)
        return Annotations.of(
            [VideoRecord(os.path.join(frame_dir, vid), label, "frames") for vid, label in entries], class_names
        )
