"""Diving48 as distributed: trimmed ``.mp4`` clips and JSON annotations.

Layout under ``root`` (the first existing candidate of each is used; the lists of the ``labels`` version)::

    Diving48_train.json | Diving48_V2_train.json      [{"vid_name", "label", "start_frame", "end_frame"}, ...]
    Diving48_test.json | Diving48_V2_test.json        (the "val" split; V1 lists first, V2 second)
    Diving48_vocab.json (optional)                    [[takeoff, somersault, twist, flight], ...] per class
    rgb/<vid_name>.mp4 | videos/<vid_name>.mp4 | <vid_name>.mp4

``start_frame`` / ``end_frame`` locate each clip in its source video; the distributed ``rgb`` clips are
already cut to them, so the whole file is read. Without a vocabulary, classes are named ``class_<i>``.
"""

from __future__ import annotations

import json
import os

from ean.data.annotations import Annotations
from ean.data.errors import DataError
from ean.data.layout import check_root, check_split, find_file, find_media_dir, media_options, video_records
from ean.data.registry import DATASETS
from ean.files_read import note

NAME = "diving48"
#: The official lists of each label version: V1 (the paper's, footnote 1) and V2 (the cleaned labels of 2020).
LIST_FILES = {
    "v1": {"train": "Diving48_train.json", "val": "Diving48_test.json"},
    "v2": {"train": "Diving48_V2_train.json", "val": "Diving48_V2_test.json"},
}
VOCAB_FILE = "Diving48_vocab.json"
VIDEO_DIRS = ("rgb", "videos", ".")
NUM_CLASSES = 48


def read_entries(path: str) -> list[tuple[str, int]]:
    """(vid_name, label) of every entry; checks the fields of the official format."""
    with open(path) as f:
        entries = json.load(f)
    for entry in entries[:1]:
        missing = {"vid_name", "label", "start_frame", "end_frame"} - set(entry)
        if missing:
            raise DataError(f"{NAME}: {path}: entries lack {sorted(missing)}")
    return [(str(e["vid_name"]), int(e["label"])) for e in entries]


def read_class_names(root: str) -> list[str]:
    """Class names from the vocabulary (its four attributes joined), or ``class_<i>`` without one."""
    path = os.path.join(root, VOCAB_FILE)
    note(path)  # the class names, when it is there
    if not os.path.isfile(path):
        return [f"class_{i}" for i in range(NUM_CLASSES)]
    with open(path) as f:
        return [" ".join(str(part) for part in attributes) for attributes in json.load(f)]


@DATASETS.register(NAME)
class Diving48:
    """Diving48 (48 dive classes) from its official files.

    Args:
        root: folder holding ``rgb/`` and the JSON lists.
        split: ``"train"`` or ``"val"`` (the official test list).
        labels: ``"v1"`` (the lists the paper reports on) or ``"v2"`` (the cleaned labels).
        media: ``"video"`` or ``"frames"`` (frame folders written by ``python -m ean.data.to_frames``).
        frames_root: where the frame folders are (default ``<root>/frames``).
    """

    #: The official lists' sizes of each label version (for estimates without the data).
    VIDEOS_OF_LABELS = {"v1": {"train": 15943, "val": 2096}, "v2": {"train": 15027, "val": 1970}}

    @staticmethod
    def official_videos(data_cfg: dict) -> dict[str, int]:
        """The official lists' sizes of the config's label version (an unknown one: none)."""
        return Diving48.VIDEOS_OF_LABELS.get(data_cfg.get("labels") or "v1", {})

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        labels: str = "v1",
        media: str = "video",
        frames_root: str | None = None,
    ):
        self.root, self.split = check_root(root, NAME), check_split(split, NAME)
        self.frames_root = media_options(media, self.root, frames_root, NAME)
        if labels not in LIST_FILES:
            raise DataError(f"{NAME}: labels = {labels!r}; valid: {', '.join(LIST_FILES)}")
        self.labels = labels

    def read(self) -> Annotations:
        list_file = LIST_FILES[self.labels][self.split]
        what = f"{self.split} list JSON ({self.labels} labels)"
        entries = read_entries(find_file(self.root, (list_file,), what, NAME))
        class_names = read_class_names(self.root)
        bad = [label for _, label in entries if not 0 <= label < len(class_names)]
        if bad:
            raise DataError(f"{NAME}: labels {sorted(set(bad))[:5]} outside 0..{len(class_names) - 1}")
        video_dir = find_media_dir(self.root, VIDEO_DIRS, "video folder", NAME, self.frames_root)
        return Annotations.of(video_records(entries, video_dir, ".mp4", self.root, self.frames_root), class_names)
