"""Kinetics-400 as distributed: ``<youtube_id>_<start:06d>_<end:06d>.mp4`` clips and CSV annotations.

Layout under ``root`` (the first existing candidate of each is used)::

    annotations/train.csv | train.csv | kinetics_400_train.csv | kinetics-400_train.csv
    annotations/val.csv | validate.csv | val.csv | kinetics_400_val.csv | kinetics-400_val.csv
        header "label,youtube_id,time_start,time_end,split[,is_cc]"
    train/ | videos_train/ | videos/ | .      clips anywhere below (e.g. train/<label>/<name>.mp4)
    val/ | validate/ | videos_val/ | videos/ | .

Classes are the sorted labels of the train and validation CSVs. Videos listed but absent on disk (YouTube
removes some every year) are dropped with one warning; if none is found, DataError says where they were
looked for.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import warnings

from ean.data.annotations import Annotations
from ean.data.errors import DataError
from ean.data.layout import check_root, check_split, find_file, find_media_dir, media_options
from ean.data.records import VIDEO_EXTENSIONS, VideoRecord
from ean.data.registry import DATASETS
from ean.files_read import note

NAME = "kinetics400"
CSV_FILES = {
    "train": ("annotations/train.csv", "train.csv", "kinetics_400_train.csv", "kinetics-400_train.csv"),
    "val": ("annotations/val.csv", "validate.csv", "val.csv", "kinetics_400_val.csv", "kinetics-400_val.csv"),
}
VIDEO_DIRS = {
    "train": ("train", "videos_train", "videos", "."),
    "val": ("val", "validate", "videos_val", "videos", "."),
}
CLIP_NAME = re.compile(r"_\d{6}_\d{6}$")


def clip_name(youtube_id: str, start: str, end: str) -> str:
    """``"abc", "10.0", "20.0"`` -> ``"abc_000010_000020"``."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def read_rows(path: str) -> list[tuple[str, str]]:
    """(label name, clip name) of every CSV row."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"label", "youtube_id", "time_start", "time_end"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{NAME}: {path}: header lacks {sorted(missing)} (expected {'label,youtube_id,...'})")
        return [(r["label"], clip_name(r["youtube_id"], r["time_start"], r["time_end"])) for r in reader]


def index_clips(folder: str, frames: bool) -> dict[str, str]:
    """Clip name -> path of every video (or frame folder) below ``folder``."""
    found = {}
    for parent, dirs, files in os.walk(folder):
        note(parent)  # a clip added to or removed from the folder changes which clips the split has
        if frames:
            found.update({d: os.path.join(parent, d) for d in dirs if CLIP_NAME.search(d)})
            dirs[:] = [d for d in dirs if not CLIP_NAME.search(d)]
        else:
            for name in files:
                stem, ext = os.path.splitext(name)
                if ext.lower() in VIDEO_EXTENSIONS:
                    found[stem] = os.path.join(parent, name)
    return found


@DATASETS.register(NAME)
class Kinetics400:
    """Kinetics-400 from its official CSVs.

    Args:
        root: folder holding the CSVs and the clips.
        split: ``"train"`` or ``"val"``.
        media: ``"video"`` or ``"frames"`` (frame folders written by ``python -m ean.data.to_frames``).
        frames_root: where the frame folders are (default ``<root>/frames``).
    """

    VIDEOS = {"train": 240436, "val": 19796}  # as usually still downloadable (for estimates without the data)

    def __init__(self, root: str, split: str = "train", *, media: str = "video", frames_root: str | None = None):
        self.root, self.split = check_root(root, NAME), check_split(split, NAME)
        self.frames_root = media_options(media, self.root, frames_root, NAME)

    def read(self) -> Annotations:
        rows = read_rows(find_file(self.root, CSV_FILES[self.split], f"{self.split} CSV", NAME))
        class_names = self._class_names(self.root, rows)
        video_dir = find_media_dir(self.root, VIDEO_DIRS[self.split], "video folder", NAME, self.frames_root)
        frames = self.frames_root is not None
        search = os.path.join(self.frames_root, os.path.relpath(video_dir, self.root)) if frames else video_dir
        clips = index_clips(search, frames=frames)
        index = {n: i for i, n in enumerate(class_names)}
        kind = "frames" if frames else "video"
        records = [VideoRecord(clips[c], index[label], kind) for label, c in rows if c in clips]
        self._report_missing(rows, clips, search)
        return Annotations.of(records, class_names)

    @staticmethod
    def _class_names(root: str, rows: list[tuple[str, str]]) -> list[str]:
        names = {label for label, _ in rows}
        for split in CSV_FILES:
            with contextlib.suppress(DataError):  # the other split's CSV is optional
                names |= {label for label, _ in read_rows(find_file(root, CSV_FILES[split], "", NAME))}
        return sorted(names)

    @staticmethod
    def _report_missing(rows: list[tuple[str, str]], clips: dict[str, str], folder: str) -> None:
        missing = [c for _, c in rows if c not in clips]
        if len(missing) == len(rows):
            raise DataError(
                f"{NAME}: none of the {len(rows)} clips of the CSV is under {folder!r}; "
                f"expected files named like {missing[0]}.mp4 (in any subfolder, e.g. <label>/)"
            )
        if missing:
            message = f"{NAME}: {len(missing)} of {len(rows)} listed clips are not on disk, e.g. {missing[:3]}"
            warnings.warn(message, stacklevel=3)
