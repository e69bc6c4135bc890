"""Finding a dataset's files under its root: clear errors that say what was expected where."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from ean.data.errors import DataError
from ean.data.records import VideoRecord, as_frames
from ean.files_read import note

SPLITS = ("train", "val")
#: The file in a frames root that says how ``ean.data.to_frames`` made its frames (short side, JPEG quality).
FRAMES_MANIFEST = ".ean_frames.json"


def frames_manifest(frames_root: str) -> dict[str, Any] | None:
    """How the frames under ``frames_root`` were made (``FRAMES_MANIFEST``), or None: not written by
    ``ean.data.to_frames`` (or by a version before it wrote one), or unreadable."""
    path = os.path.join(frames_root, FRAMES_MANIFEST)
    note(path)
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def check_root(root: str | os.PathLike, dataset: str) -> str:
    """Returns ``root`` as a string; DataError if it is not an existing folder."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(
            f"{dataset}: data root {root!r} does not exist or is not a folder "
            "(set data.root in a study, --root for ean.data.check)"
        )
    return root


def check_split(split: str, dataset: str) -> str:
    if split not in SPLITS:
        raise DataError(f"{dataset}: split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def find_file(root: str, candidates: Sequence[str], what: str, dataset: str) -> str:
    """The first of ``candidates`` (paths relative to ``root``, or absolute) that is a file."""
    for name in candidates:
        path = os.path.join(root, name)
        note(path)  # each candidate tried: one that appears changes which is read
        if os.path.isfile(path):
            return path
    tried = "\n".join(f"  {os.path.join(root, c)}" for c in candidates)
    raise DataError(f"{dataset}: {what} not found; expected one of:\n{tried}")


def find_dir(root: str, candidates: Sequence[str], what: str, dataset: str) -> str:
    """The first of ``candidates`` (relative to ``root``) that is a folder."""
    for name in candidates:
        path = os.path.normpath(os.path.join(root, name))
        note(path)
        if os.path.isdir(path):
            return path
    tried = "\n".join(f"  {os.path.normpath(os.path.join(root, c))}" for c in candidates)
    raise DataError(f"{dataset}: {what} not found; expected one of:\n{tried}")


def media_options(media: str, root: str, frames_root: str | None, dataset: str) -> str | None:
    """Checks ``media`` ("video" or "frames"); returns the frames root for frames (default ``<root>/frames``)."""
    if media not in ("video", "frames"):
        raise DataError(f"{dataset}: media must be 'video' or 'frames', got {media!r}")
    if media == "video":
        return None
    frames_root = frames_root or os.path.join(root, "frames")
    if not os.path.isdir(frames_root):
        raise DataError(
            f"{dataset}: frames folder {frames_root!r} not found (media='frames'); "
            f"write it with `python -m ean.data.to_frames --dataset {dataset} --root {root}`"
        )
    return frames_root


def find_media_dir(
    root: str, candidates: Sequence[str], what: str, dataset: str, frames_root: str | None = None
) -> str:
    """The videos' folder under ``root``. Reading frames (``frames_root`` given), the videos may be gone: the
    candidate whose copy exists under ``frames_root`` is returned (record paths are mapped there later)."""
    if frames_root is None:
        return find_dir(root, candidates, what, dataset)
    for name in candidates:
        note(os.path.join(frames_root, name))
        if os.path.isdir(os.path.join(frames_root, name)):
            return os.path.normpath(os.path.join(root, name))
    return find_dir(frames_root, candidates, f"frame folders of the {what}", dataset)


def video_records(
    entries: Sequence[tuple[str, int]], video_dir: str, ext: str, root: str, frames_root: str | None
) -> list[VideoRecord]:
    """The records of ``(video id, label)`` entries: ``<video_dir>/<id><ext>``, or their frame folders under
    ``frames_root`` (written by :mod:`ean.data.to_frames`) when it is given."""
    records = [VideoRecord(os.path.join(video_dir, vid + ext), label) for vid, label in entries]
    return as_frames(records, root, frames_root) if frames_root else records
