"""MediaSource: where a clip's pixels come from: the reader of each process, the decode size and the timeouts.

A record's video is opened at its *decode size*: the working size when decord can scale it down while it
converts frames to RGB (cheaper than decoding the stored size), else the stored size. Readers are made on
first use in each process (after DataLoader workers fork) and are never pickled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ean.data.readers import DecordVideoReader, FrameFolderReader, SubprocessVideoReader
from ean.data.readers.stored_size import stored_frame_size
from ean.data.records import VideoRecord
from ean.data.transforms import resized_shape


class MediaSource:
    """Opens the videos and frame folders of records, one reader per media kind and process.

    Args:
        resize: working size: [H, W] or an int short side.
        resize_at_decode: decode videos at the working size when that shrinks them (see ``decode_size``).
        decode_timeout_s: give up on a video after this many seconds (decodes in a killable process); 0:
            decode in-process with no timeout.
        decode_threads: decord threads per reader for non-webm videos.
        image_tmpl: frame file names in frame folders.
    """

    def __init__(
        self,
        resize: int | Sequence[int],
        *,
        resize_at_decode: bool = True,
        decode_timeout_s: float = 30.0,
        decode_threads: int = 1,
        image_tmpl: str = "{:05d}.jpg",
    ):
        self.resize = resize if isinstance(resize, int) else tuple(resize)
        self.resize_at_decode = resize_at_decode
        self.decode_timeout_s, self.decode_threads, self.image_tmpl = decode_timeout_s, decode_threads, image_tmpl
        self._readers: dict | None = None
        self._readers_pid: int | None = None

    def open(self, record: VideoRecord):
        """The video or frame folder of ``record``, opened with this process's reader at ``decode_size``."""
        size, reader = self.decode_size(record), self.reader(record.media)
        return reader.open(record.path) if size is None else reader.open(record.path, size)

    def decode_size(self, record: VideoRecord) -> tuple[int, int] | None:
        """(H, W) to decode ``record``'s frames at, or None for their stored size.

        The working size when ``resize_at_decode`` and it has fewer pixels than the stored size, read from the
        header (an enlargement is cheaper after the crop). A short-side working size needs the stored size; a
        fixed one is used even when the header cannot be read."""
        if not self.resize_at_decode or record.media != "video":
            return None
        stored = stored_frame_size(record.path)
        if stored is None:
            return None if isinstance(self.resize, int) else self.resize
        working = resized_shape(*stored, self.resize)
        return working if working[0] * working[1] < stored[0] * stored[1] else None

    def reader(self, media: str):
        """This process's reader for ``"video"`` or ``"frames"`` (made on first use, after workers fork)."""
        if self._readers is None or self._readers_pid != os.getpid():
            self._readers, self._readers_pid = {}, os.getpid()
        if media not in self._readers:
            self._readers[media] = self._make_reader(media)
        return self._readers[media]

    def _make_reader(self, media: str):
        if media == "frames":
            return FrameFolderReader(self.image_tmpl)
        if self.decode_timeout_s and self.decode_timeout_s > 0:
            return SubprocessVideoReader(self.decode_timeout_s, self.decode_threads)
        return DecordVideoReader(self.decode_threads)

    def close(self) -> None:
        """Stops this process's decoder processes (they also stop on their own when it exits)."""
        for reader in (self._readers or {}).values():
            reader.close()

    def __getstate__(self):
        return {**self.__dict__, "_readers": None, "_readers_pid": None}
