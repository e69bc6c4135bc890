"""Readers open one video or frame folder and decode only the frames asked for.

Every reader has ``open(path) -> media``; a media object has ``len(media)`` (frames) and
``media.decode(indices) -> decoded``: the frames, still where they were decoded, with ``decoded.frame_size``
(H, W) and ``decoded.crop(box=None) -> uint8 tensor (N, 3, h, w)`` that hands over one region of them (a
box in source pixels; None: whole frames), so that a decoder process copies only what the clip's crops
need. ``media.get(indices)`` is ``media.decode(indices).crop()``. Anything that makes a file unreadable
raises :class:`ean.data.errors.BadMediaError` naming the file.
"""

from ean.data.readers.frames import FrameFolderReader
from ean.data.readers.timeout import SubprocessVideoReader
from ean.data.readers.video import DecordVideoReader

__all__ = ["DecordVideoReader", "FrameFolderReader", "SubprocessVideoReader"]
