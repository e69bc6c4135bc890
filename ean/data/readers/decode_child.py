"""The decoder process of SubprocessVideoReader: a loop that opens videos and decodes frames on request.

Run as a script (``python decode_child.py READ_FD WRITE_FD BUFFER_FD``) so that starting it imports decord
and numpy only (``decord_core``, ``decode_protocol`` and ``heap`` are found beside this file; the heap is tuned
first, see :mod:`ean.data.readers.heap`). Requests and replies are binary messages of fixed layouts (see
:mod:`ean.data.readers.decode_protocol`; nothing is pickled either way). It first sends READY; then::

    OPEN path, num_threads, size        -> OPENED num_frames | ERROR reason   (size: (H, W) or None)
    DECODE indices                      -> DECODED (N, H, W, 3) | ERROR reason
    CROP top, left, height, width       -> CROPPED (N, h, w, 3), buffer_size | ERROR reason

``decode`` keeps the frames here (until the next request for another file) and then releases decord's reader
(see :class:`OpenVideo`); ``crop`` copies one region of them into the shared buffer file (an unlinked file both
processes hold, grown here when a batch does not fit), so only the pixels the clip's crops need cross, and
without a copy through a pipe. It exits when its parent closes the request pipe (or dies).
"""

import mmap
import os
import sys
from multiprocessing.connection import Connection

from heap import keep_freed_memory

keep_freed_memory()  # before numpy and decord allocate anything: every decode reuses the last one's memory

import decode_protocol as protocol  # noqa: E402
import numpy as np  # noqa: E402
from decord_core import DecodeFailure, decode_indices, open_decord  # noqa: E402


class SharedBuffer:
    """The shared file, mapped; grown (by powers of two) to fit ``size`` bytes."""

    def __init__(self, fd: int):
        self.fd, self.map = fd, None

    def fit(self, size: int) -> mmap.mmap:
        if self.map is None or len(self.map) < size:
            capacity = 1 << max(size - 1, 1).bit_length()
            os.ftruncate(self.fd, capacity)
            self.map = mmap.mmap(self.fd, capacity)
        return self.map


class OpenVideo:
    """The video of the latest ``open`` and the frames of its latest decode.

    decord's reader is kept only until a decode is answered: an open reader goes on decoding frames ahead in
    its own thread (CPU time: benchmarks/RESULTS.md, "Data loading, by hand"), work nobody asked for that
    competes with the clip's rendering. A further decode of the same video opens it again.
    """

    def __init__(self, path: str, num_threads: int, size: tuple[int, int] | None):
        self.path, self.num_threads, self.size = path, num_threads, size
        self.reader = open_decord(path, num_threads, size)
        self.num_frames = len(self.reader)
        self.frames = None

    def decode(self, indices: np.ndarray) -> tuple[int, ...]:
        self.frames = None
        self.reader = self.reader or open_decord(self.path, self.num_threads, self.size)
        self.frames = decode_indices(self.reader, indices)
        return self.frames.shape

    def release_reader(self) -> None:
        self.reader = None


def serve(requests: Connection, replies: Connection, buffer: SharedBuffer) -> None:
    """Says READY once imported, then answers requests until the parent closes the pipe."""
    replies.send_bytes(protocol.encode_ready())
    video = None
    while True:
        try:
            request = protocol.decode_request(requests.recv_bytes(protocol.MAX_REQUEST_BYTES))
        except (EOFError, OSError, protocol.ProtocolError):
            return  # closed, or a parent that does not speak the protocol: nothing to answer
        try:
            if request[0] == "open":
                video = None
                video = OpenVideo(*request[1:])
                replies.send_bytes(protocol.encode_opened(video.num_frames))
            elif request[0] == "decode":
                replies.send_bytes(protocol.encode_decoded(video.decode(np.asarray(request[1], dtype=np.int64))))
                video.release_reader()  # after the answer: the parent plans the crop meanwhile
            else:
                top, left, height, width = request[1:]
                region = video.frames[:, top : top + height, left : left + width]
                replies.send_bytes(protocol.encode_cropped(*copy_region(region, buffer)))
        except DecodeFailure as e:
            replies.send_bytes(protocol.encode_error(e.reason))
        except Exception as e:  # anything else about this file: the parent marks it bad
            replies.send_bytes(protocol.encode_error(f"{type(e).__name__}: {e}"))


def copy_region(region: np.ndarray, buffer: SharedBuffer) -> tuple[tuple[int, ...], int]:
    """Writes ``region`` (N, h, w, 3), compact, into the shared buffer; returns its shape and the buffer's size."""
    shared = buffer.fit(region.nbytes)
    np.frombuffer(shared, dtype=np.uint8, count=region.size).reshape(region.shape)[...] = region
    return region.shape, len(shared)


if __name__ == "__main__":
    fds = [int(a) for a in sys.argv[1:4]]
    serve(Connection(fds[0], writable=False), Connection(fds[1], readable=False), SharedBuffer(fds[2]))
