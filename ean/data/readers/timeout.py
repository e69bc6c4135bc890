"""decord in a killable decoder process, so a decode that hangs cannot hang training.

decord 0.6 can hang inside ``get_batch`` on some H.264 files while holding the GIL, so no thread of the
hanging process can interrupt it. This reader sends each request to a long-lived child process (one per
DataLoader worker, started on first use) and waits at most ``timeout_s`` for the answer; on a timeout it
kills the child, raises :class:`BadMediaError` for the file, and starts a fresh child for the next file.
The frames stay in the child after decoding; only the region the clip's crops need comes back, through a
shared, unlinked file mapped by both processes (no copy through a pipe).

The child parses untrusted files, so nothing it says is trusted: its replies are binary messages of fixed
layouts (:mod:`ean.data.readers.decode_protocol`, never pickle), read with a size limit and a deadline, and
checked against the request (the frame count, the shape of the frames or region asked for, a buffer that
exists). A reply that fails a check kills the child and raises :class:`BadMediaError` for the file. (A child
that shrinks the shared file after its reply can still make reading the region fault, SIGBUS, which kills the
DataLoader worker and so fails the run; it cannot run code in this process.)
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection

import numpy as np
import torch

from ean.data.errors import BadMediaError
from ean.data.readers import decode_protocol as protocol
from ean.data.readers.video import to_tensor
from ean.data.transforms import Box

CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode_child.py")
SHARED_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
STARTUP_TIMEOUT_S = 120.0
MAX_FRAMES = 1 << 30  # a frame count above this is not a video's
MAX_SIDE = 1 << 15  # nor a frame side above this


class _Child:
    """A decoder process, the pipes to it (requests: a Connection; replies: read here, see ``receive``) and the
    shared frame buffer."""

    def __init__(self, command: list[str]):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.buffer_fd, name = tempfile.mkstemp(prefix="ean-decode-", dir=SHARED_DIR)
        os.unlink(name)  # lives while either process holds it; nothing is left behind
        passed = (to_child_r, from_child_w, self.buffer_fd)
        self.process = subprocess.Popen([*command, *map(str, passed)], pass_fds=passed, close_fds=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self.requests = Connection(to_child_w, readable=False)
        self.replies_fd = from_child_r
        self.map: mmap.mmap | None = None

    def receive(self, timeout_s: float) -> tuple | None:
        """The child's next reply, decoded (:func:`decode_protocol.decode_reply`); None when it has not come
        whole within ``timeout_s``. EOFError when the child closed its end; ProtocolError for a reply of no
        known layout or over ``MAX_REPLY_BYTES``. Reads ``Connection.send_bytes``' frames."""
        deadline = time.monotonic() + timeout_s
        header = self._read(4, deadline)
        if header is None:
            return None
        (size,) = struct.unpack("!i", header)
        if not 0 <= size <= protocol.MAX_REPLY_BYTES:
            raise protocol.ProtocolError(f"a reply of {size} bytes (at most {protocol.MAX_REPLY_BYTES})")
        body = self._read(size, deadline)
        return None if body is None else protocol.decode_reply(body)

    def _read(self, n: int, deadline: float) -> bytes | None:
        """``n`` bytes of the reply pipe, or None if they have not all come by ``deadline``."""
        data = bytearray()
        poller = select.poll()
        poller.register(self.replies_fd, select.POLLIN)
        while len(data) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(math.ceil(remaining * 1000)):
                return None
            chunk = os.read(self.replies_fd, n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return bytes(data)

    def frames(self, shape: tuple[int, ...], capacity: int) -> np.ndarray:
        """The frames the child just wrote (a view of the shared buffer, valid until the next request)."""
        if self.map is None or len(self.map) != capacity:
            self.map = mmap.mmap(self.buffer_fd, capacity)  # the old map closes when no array uses it
        return np.frombuffer(self.map, dtype=np.uint8, count=math.prod(shape)).reshape(shape)

    def kill(self) -> None:
        self.requests.close()
        with contextlib.suppress(OSError):
            os.close(self.replies_fd)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.map = None
        with contextlib.suppress(OSError):
            os.close(self.buffer_fd)


class SubprocessVideoReader:
    """Decodes with decord in a child process and gives up on a file after ``timeout_s`` seconds.

    ``media.decode(indices).crop(box)`` (and ``media.get(indices)``) return a tensor that views the shared
    buffer: use it (or copy it) before the next request to the same reader, as ClipDataset does.

    Args:
        timeout_s: longest wait for one open or one batch decode.
        num_threads: decoder threads for non-webm files.
        command: the child's command line before its three fd arguments (tests substitute a fake decoder).
    """

    def __init__(self, timeout_s: float = 30.0, num_threads: int = 1, command: list[str] | None = None):
        self.timeout_s, self.num_threads = timeout_s, num_threads
        self.command = command or [sys.executable, CHILD_SCRIPT]
        self._child: _Child | None = None
        self._pid = None
        self._decodes = 0  # counts decode requests: the child keeps the frames of the latest one only

    def open(self, path: str, size: tuple[int, int] | None = None) -> _ChildVideo:
        """The video at ``path``; with ``size`` (H, W), its frames decode scaled to that size."""
        (num_frames,) = self._ask(path, protocol.encode_open(path, self.num_threads, size), "opened")
        if num_frames < 1:
            raise BadMediaError(path, "video has no frames")
        if num_frames > MAX_FRAMES:
            raise self._invalid(path, f"{num_frames} frames")
        return _ChildVideo(self, path, num_frames)

    def _ask(self, path: str, request: bytes, expected: str) -> tuple:
        """The fields of the child's ``expected`` reply to ``request``. BadMediaError for an ERROR reply, a
        timeout, a dead child, or any other reply (the child is then killed; a fresh one reads the next file)."""
        child = self._ensure_child()
        try:
            child.requests.send_bytes(request)
            reply = child.receive(self.timeout_s)
        except (EOFError, OSError):
            self.close()
            raise BadMediaError(path, "the decoder process died while reading this file") from None
        except protocol.ProtocolError as e:
            raise self._invalid(path, str(e)) from None
        if reply is None:
            self.close()
            raise BadMediaError(path, f"decoding timed out after {self.timeout_s:g} s (decoder process killed)")
        if reply[0] == "error":
            raise BadMediaError(path, reply[1])
        if reply[0] != expected:
            raise self._invalid(path, f"{reply[0]} where {expected} was due")
        return reply[1:]

    def _invalid(self, path: str, why: str) -> BadMediaError:
        """Kills the child, which said something no decoder says; the error to raise for the file."""
        self.close()
        return BadMediaError(path, f"the decoder process sent an invalid reply ({why}); decoder process killed")

    def _decoded(self, path: str, shape: tuple[int, ...], count: int) -> tuple[int, ...]:
        """``shape`` of a DECODED reply to ``count`` indices, checked: (count, H, W, 3), sides up to MAX_SIDE."""
        sides_ok = len(shape) == 4 and all(1 <= side <= MAX_SIDE for side in shape[1:3])
        if not (sides_ok and shape[0] == count and shape[3] == 3):
            raise self._invalid(path, f"frames of shape {shape} for {count} indices")
        return shape

    def _region(self, path: str, shape: tuple[int, ...], capacity: int, expected: tuple[int, ...]) -> np.ndarray:
        """The region of a CROPPED reply, checked: the shape asked for, within a buffer the shared file holds."""
        if shape != expected:
            raise self._invalid(path, f"a region of shape {shape} where {expected} was asked for")
        size, stored = math.prod(shape), os.fstat(self._child.buffer_fd).st_size
        if not size <= capacity <= stored:
            raise self._invalid(path, f"a region of {size} bytes in a buffer of {capacity} ({stored} shared)")
        return self._child.frames(shape, capacity)

    def _ensure_child(self) -> _Child:
        """The decoder process, started (and waited for, not counting against any file) if needed."""
        if self._child is None or self._pid != os.getpid() or self._child.process.poll() is not None:
            self._child, self._pid = _Child(self.command), os.getpid()
            try:
                ready = self._child.receive(STARTUP_TIMEOUT_S) == ("ready",)
            except (EOFError, OSError, protocol.ProtocolError):
                ready = False
            if not ready:
                self.close()
                raise RuntimeError(f"the decoder process ({' '.join(self.command)}) did not start")
        return self._child

    def close(self) -> None:
        """Stops the decoder process (a new one starts on the next request)."""
        if self._child is not None and self._pid == os.getpid():
            self._child.kill()
        self._child = None

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    def __getstate__(self):
        return {**self.__dict__, "_child": None, "_pid": None}


class _ChildVideo:
    def __init__(self, reader: SubprocessVideoReader, path: str, num_frames: int):
        self.reader, self.path, self.num_frames = reader, path, num_frames

    def __len__(self) -> int:
        return self.num_frames

    def decode(self, indices: np.ndarray) -> _ChildFrames:
        """Decodes the frames at ``indices`` (any shape) in the decoder process, where they stay for ``crop``."""
        flat = np.asarray(indices, dtype=np.int64).reshape(-1).tolist()
        (shape,) = self.reader._ask(self.path, protocol.encode_decode(flat), "decoded")
        shape = self.reader._decoded(self.path, shape, len(flat))
        self.reader._decodes += 1
        return _ChildFrames(self.reader, self.path, shape, decode_number=self.reader._decodes)

    def get(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 (N, 3, H, W) for ``indices`` (any shape); a view valid until the reader's next request."""
        return self.decode(indices).crop()


class _ChildFrames:
    """Frames decoded in the decoder process; ``crop`` brings a region of them over.

    Attributes:
        frame_size: (H, W) of the frames.
    """

    def __init__(self, reader: SubprocessVideoReader, path: str, shape: tuple[int, ...], decode_number: int):
        self.reader, self.path, self.decode_number = reader, path, decode_number
        self.num_frames, self.frame_size = shape[0], tuple(shape[1:3])

    def crop(self, box: Box | None = None) -> torch.Tensor:
        """uint8 (N, 3, h, w) of ``box`` (None: whole frames), compact with channels-last strides; a view of the
        shared buffer, valid until the reader's next request."""
        if self.decode_number != self.reader._decodes:
            raise RuntimeError(f"{self.path}: its decoded frames were replaced by a later decode with this reader")
        box = Box(*map(int, box or Box(0, 0, *self.frame_size)))
        shape, capacity = self.reader._ask(self.path, protocol.encode_crop(*box), "cropped")
        region = self.reader._region(self.path, shape, capacity, (self.num_frames, box.height, box.width, 3))
        return to_tensor(region)
