"""glibc's heap tuned for decoding clip after clip: freed frame buffers are reused, not returned and refaulted.

Every clip allocates the same few large buffers (decoded frames: 12 MB for 40 frames at 240p, 28 MB at
360p; the resized views; the decoder's own frames) and frees them before the next clip. With glibc's
defaults, blocks that large are often handed back to the system on free (``munmap`` of a mmapped block, or
trimming of the heap's top), so the next clip touches fresh pages, each page fault zeroing a page. Raising
the mmap and trim thresholds keeps them in the heap for reuse: fewer page faults, a faster pipeline that
varies less from run to run, at the price of memory (``benchmarks/data_loading.py`` against its
``--untuned-heap``; figures: benchmarks/RESULTS.md, section "Data loading, by hand").

Applied in the processes that only load data (DataLoader workers, see ``ean.data.builder.seed_worker``,
and the decoder processes), never in the training process. ``EAN_KEEP_FREED_MEMORY=0`` in the environment
turns it off. Imports the standard library only: the decoder process uses it before importing decord.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit): blocks below it come from the heap
TRIM_THRESHOLD = 128 << 20  # free memory the heap's top may keep before it is returned to the system
SWITCH = "EAN_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Tunes this process's glibc heap (see the module docstring); returns whether it did (False off glibc, or
    when the environment says ``EAN_KEEP_FREED_MEMORY=0``)."""
    if os.environ.get(SWITCH, "1") == "0" or not _is_glibc():
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False
