"""Readers open one video or frame folder and decode only the frames asked for.

Every reader has ``open(path) -> media``; a media object has ``len(media)`` (frames) and
``media.get(indices) -> uint8 tensor (N, 3, H, W)``. Anything that makes a file unreadable raises
:class:`ean.data.errors.BadMediaError` naming the file.
"""

from ean.data.readers.frames import FrameFolderReader
from ean.data.readers.timeout import SubprocessVideoReader
from ean.data.readers.video import DecordVideoReader

__all__ = ["DecordVideoReader", "FrameFolderReader", "SubprocessVideoReader"]
