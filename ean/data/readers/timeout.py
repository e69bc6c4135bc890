"""decord in a killable decoder process, so a decode that hangs cannot hang training.

decord 0.6 can hang inside ``get_batch`` on some H.264 files while holding the GIL, so no thread of the
hanging process can interrupt it. This reader sends each request to a long-lived child process (one per
DataLoader worker, started on first use) and waits at most ``timeout_s`` for the answer; on a timeout it
kills the child, raises :class:`BadMediaError` for the file, and starts a fresh child for the next file.
The frames stay in the child after decoding; only the region the clip's crops need comes back, through a
shared, unlinked file mapped by both processes (no copy through a pipe).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection

import numpy as np
import torch

from ean.data.errors import BadMediaError
from ean.data.readers.video import to_tensor
from ean.data.transforms import Box

CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode_child.py")
SHARED_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
STARTUP_TIMEOUT_S = 120.0


class _Child:
    """A decoder process, the two pipes to it and the shared frame buffer."""

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
        self.replies = Connection(from_child_r, writable=False)
        self.map: mmap.mmap | None = None

    def frames(self, shape: tuple[int, ...], capacity: int) -> np.ndarray:
        """The frames the child just wrote (a view of the shared buffer, valid until the next request)."""
        if self.map is None or len(self.map) != capacity:
            self.map = mmap.mmap(self.buffer_fd, capacity)  # the old map closes when no array uses it
        return np.frombuffer(self.map, dtype=np.uint8, count=int(np.prod(shape))).reshape(shape)

    def kill(self) -> None:
        self.requests.close()
        self.replies.close()
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
        num_frames = self._ask(path, ("open", path, self.num_threads, size))
        if num_frames < 1:
            raise BadMediaError(path, "video has no frames")
        return _ChildVideo(self, path, num_frames)

    def _ask(self, path: str, request: tuple):
        child = self._ensure_child()
        try:
            child.requests.send(request)
            if not child.replies.poll(self.timeout_s):
                self.close()
                raise BadMediaError(path, f"decoding timed out after {self.timeout_s:g} s (decoder process killed)")
            status, *value = child.replies.recv()
        except (EOFError, OSError):
            self.close()
            raise BadMediaError(path, "the decoder process died while reading this file") from None
        if status == "error":
            raise BadMediaError(path, value[0])
        return child.frames(*value) if request[0] == "crop" else value[0]

    def _ensure_child(self) -> _Child:
        """The decoder process, started (and waited for, not counting against any file) if needed."""
        if self._child is None or self._pid != os.getpid() or self._child.process.poll() is not None:
            self._child, self._pid = _Child(self.command), os.getpid()
            try:
                ready = self._child.replies.poll(STARTUP_TIMEOUT_S) and self._child.replies.recv() == ("ready",)
            except (EOFError, OSError):
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
        shape = self.reader._ask(self.path, ("decode", flat))
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
        self.frame_size = tuple(shape[1:3])

    def crop(self, box: Box | None = None) -> torch.Tensor:
        """uint8 (N, 3, h, w) of ``box`` (None: whole frames), compact with channels-last strides; a view of the
        shared buffer, valid until the reader's next request."""
        if self.decode_number != self.reader._decodes:
            raise RuntimeError(f"{self.path}: its decoded frames were replaced by a later decode with this reader")
        box = box or Box(0, 0, *self.frame_size)
        return to_tensor(self.reader._ask(self.path, ("crop", *map(int, box))))
