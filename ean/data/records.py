"""One annotated video: where its pixels are and what its label is."""

from __future__ import annotations

import os
from dataclasses import dataclass

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")


@dataclass(frozen=True)
class VideoRecord:
    """A video file or a folder of JPEG frames, with its class.

    Attributes:
        path: the ``.mp4`` / ``.webm`` file, or the folder of frames ``00001.jpg, 00002.jpg, ...``.
        label: class index.
        media: ``"video"`` or ``"frames"``.
    """

    path: str
    label: int
    media: str = "video"


def frames_path(video_path: str, root: str, frames_root: str) -> str:
    """Where :mod:`ean.data.to_frames` puts the frames of ``video_path``: same relative path, no extension."""
    relative = os.path.relpath(os.path.splitext(video_path)[0], root)
    return os.path.join(frames_root, relative)


def as_frames(records: list[VideoRecord], root: str, frames_root: str) -> list[VideoRecord]:
    """The same videos read from frame folders written by :mod:`ean.data.to_frames` under ``frames_root``."""
    return [VideoRecord(frames_path(r.path, root, frames_root), r.label, "frames") for r in records]
