"""Loading processes keep freed clip buffers for the next clip instead of faulting fresh pages in."""

import os
import subprocess
import sys

import pytest

from ean.data.readers import heap

# The buffers of a dense 240p clip, 20 times: decoded frames (12 MB), the crop's region (6 MB), the resized and
# the flipped views (6 MB each), touched, then freed; prints the page faults of the loop.
LOOP = """
import ctypes, sys
sys.path.insert(0, {readers!r})
import heap
assert heap.keep_freed_memory() == {tuned}
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def faults():
    return int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[7])
before = faults()
for _ in range(20):
    blocks = [libc.malloc(size << 20) for size in (12, 6, 6, 6)]
    for block, size in zip(blocks, (12, 6, 6, 6)):
        ctypes.memset(block, 1, size << 20)
    for block in blocks:
        libc.free(block)
print(faults() - before)
"""


def page_faults(tuned: bool) -> int:
    readers = os.path.dirname(heap.__file__)
    code = LOOP.format(readers=readers, tuned=tuned)
    env = {**os.environ, heap.SWITCH: "1" if tuned else "0"}
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout)


@pytest.mark.skipif(not heap._is_glibc(), reason="the heap tuning is for glibc")
def test_a_tuned_heap_reuses_freed_clip_buffers():
    untuned, tuned = page_faults(False), page_faults(True)
    pages = 30 * (1 << 20) // os.sysconf("SC_PAGE_SIZE")  # one iteration's pages
    assert untuned > 10 * pages  # glibc's defaults: the buffers come back as fresh pages, clip after clip
    assert tuned < 2 * pages  # tuned: touched once, then reused


def test_dataloader_workers_tune_their_heap(monkeypatch):
    from ean.data import builder

    calls = []
    monkeypatch.setattr(builder, "keep_freed_memory", lambda: calls.append(1) or True)
    builder.seed_worker(0)
    assert calls == [1]
