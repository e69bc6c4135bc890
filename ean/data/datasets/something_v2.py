"""Something-Something V2 as distributed: ``<id>.webm`` videos and JSON annotations.

Layout under ``root`` (the first existing candidate of each is used)::

    labels/labels.json | something-something-v2-labels.json | labels.json     {"Moving something up": "93", ...}
    labels/train.json | something-something-v2-train.json | train.json         [{"id", "label", "template",
    labels/validation.json | something-something-v2-validation.json | validation.json   "placeholders"}, ...]
    20bn-something-something-v2/<id>.webm | videos/<id>.webm | <id>.webm

An entry's class is its ``template`` with the brackets of ``[something]`` removed, looked up in the labels.
"""

from __future__ import annotations

import json

from ean.data.annotations import Annotations
from ean.data.errors import DataError
from ean.data.layout import check_root, check_split, find_file, find_media_dir, media_options, video_records
from ean.data.registry import DATASETS

NAME = "something_v2"
LABEL_FILES = ("labels/labels.json", "something-something-v2-labels.json", "labels.json")
LIST_FILES = {
    "train": ("labels/train.json", "something-something-v2-train.json", "train.json"),
    "val": ("labels/validation.json", "something-something-v2-validation.json", "validation.json"),
}
VIDEO_DIRS = ("20bn-something-something-v2", "videos", ".")


def template_class(template: str) -> str:
    """``"Putting [something] on [something]"`` -> ``"Putting something on something"`` (the labels' key)."""
    return template.replace("[", "").replace("]", "")


def read_labels(path: str) -> list[str]:
    """Class names ordered by index from the labels JSON (template -> index as a string)."""
    with open(path) as f:
        table = json.load(f)
    names = sorted(table, key=lambda name: int(table[name]))
    if [int(table[n]) for n in names] != list(range(len(names))):
        raise DataError(f"{NAME}: {path}: class indices must be 0..{len(names) - 1}")
    return names


def read_entries(path: str, class_index: dict[str, int]) -> list[tuple[str, int]]:
    """(video id, label) of every entry of a train/validation JSON list."""
    with open(path) as f:
        entries = json.load(f)
    out = []
    for entry in entries:
        name = template_class(entry["template"])
        if name not in class_index:
            raise DataError(f"{NAME}: {path}: entry {entry['id']} has template {name!r}, not in the labels file")
        out.append((str(entry["id"]), class_index[name]))
    return out


@DATASETS.register(NAME)
class SomethingV2:
    """Something-Something V2 (174 classes) from its official files.

    Args:
        root: folder holding the videos and the annotations.
        split: ``"train"`` or ``"val"`` (the official validation list).
        video_ext: extension of the video files (``.webm`` as distributed).
        media: ``"video"`` or ``"frames"`` (read frame folders written by ``python -m ean.data.to_frames``).
        frames_root: where the frame folders are (default ``<root>/frames``).
    """

    CLIP_DEFAULTS = {"resize": (240, 320)}  # the Something recipe's working size
    VIDEOS = {"train": 168913, "val": 24777}  # the official lists' sizes (for estimates without the data)

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        video_ext: str = ".webm",
        media: str = "video",
        frames_root: str | None = None,
    ):
        self.root, self.split = check_root(root, NAME), check_split(split, NAME)
        self.video_ext, self.frames_root = video_ext, media_options(media, self.root, frames_root, NAME)

    def read(self) -> Annotations:
        class_names = read_labels(find_file(self.root, LABEL_FILES, "labels JSON", NAME))
        entries = read_entries(
            find_file(self.root, LIST_FILES[self.split], f"{self.split} list JSON", NAME),
            {n: i for i, n in enumerate(class_names)},
        )
        video_dir = find_media_dir(self.root, VIDEO_DIRS, "video folder", NAME, self.frames_root)
        return Annotations.of(
            video_records(entries, video_dir, self.video_ext, self.root, self.frames_root), class_names
        )
