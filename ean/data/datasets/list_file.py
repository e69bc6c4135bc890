"""The TSN/TSM list file: one ``path num_frames label`` line per video, for frame folders or video files.

Paths are relative to ``root`` (or absolute). A path with a video extension is read as a video, any other
as a frame folder named by ``image_tmpl``. ``num_frames`` is parsed for compatibility but the frames are
counted from the file or folder itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ean.data.annotations import Annotations
from ean.data.errors import DataError
from ean.data.layout import check_root, check_split, find_file
from ean.data.records import VIDEO_EXTENSIONS, VideoRecord
from ean.data.registry import DATASETS

NAME = "list_file"


def read_list(path: str, root: str) -> list[VideoRecord]:
    """Records of every ``path num_frames label`` line (paths may contain spaces)."""
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").rsplit(maxsplit=2)
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].lstrip("-").isdigit():
                raise DataError(f"{NAME}: {path}:{number}: expected 'path num_frames label', got {line.strip()!r}")
            media = "video" if os.path.splitext(parts[0])[1].lower() in VIDEO_EXTENSIONS else "frames"
            records.append(VideoRecord(os.path.join(root, parts[0]), int(parts[2]), media))
    return records


def read_class_names(class_names: Sequence[str] | str | None, root: str, records: list[VideoRecord]) -> list[str]:
    """Names from a list, or a file (one per line), or ``class_<i>`` up to the largest label."""
    if isinstance(class_names, str):
        with open(find_file(root, [class_names], "class names file", NAME)) as f:
            class_names = [line.strip() for line in f if line.strip()]
    if class_names is None:
        class_names = [f"class_{i}" for i in range(max(r.label for r in records) + 1)]
    if any(not 0 <= r.label < len(class_names) for r in records):
        raise DataError(f"{NAME}: labels must lie in 0..{len(class_names) - 1} (the class names given)")
    return list(class_names)


@DATASETS.register(NAME)
class ListFile:
    """Any dataset described by TSN-style list files.

    Args:
        root: folder the list's paths are relative to.
        split: ``"train"`` or ``"val"``.
        train_list: the training list file (relative to ``root`` or absolute).
        val_list: the validation list file.
        class_names: the class names, or a file of them (one per line), or None for ``class_<i>``.
    """

    #: Options that say where the annotations lie, not what they say (the data fingerprint holds their contents):
    #: not part of the data's identity, like ``root``.
    LOCATION_OPTIONS = ("train_list", "val_list", "class_names")

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        train_list: str = "train.txt",
        val_list: str = "val.txt",
        class_names: Sequence[str] | str | None = None,
    ):
        self.root, self.split = check_root(root, NAME), check_split(split, NAME)
        self.list_name = train_list if self.split == "train" else val_list
        self.class_names = class_names

    def read(self) -> Annotations:
        list_path = find_file(self.root, [self.list_name], f"{self.split} list file", NAME)
        records = read_list(list_path, self.root)
        if not records:
            raise DataError(f"{NAME}: {list_path} lists no videos")
        return Annotations.of(records, read_class_names(self.class_names, self.root, records))
