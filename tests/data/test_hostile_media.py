"""Hostile and repeated input: 500 opens through the decoder process do not grow either process's memory, and
a loader over fuzzed videos (truncated, bytes flipped, empty, garbage named .mp4) skips and reports every
unreadable one, crashes on none, hangs on none, and yields every good video."""

import os

import numpy as np
import pytest
import torch

from ean.data import build_loader
from ean.data.readers import SubprocessVideoReader
from ean.data.transforms import Box
from tests.data.media import write_video


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (VmRSS), MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_500_opens_and_decodes_do_not_grow_the_memory_of_either_process(tmp_path):
    path = write_video(str(tmp_path / "clip.mp4"), 30)
    reader = SubprocessVideoReader(20.0)
    indices = np.arange(0, 30, 2)  # 15 frames, whole (get) and a crop
    for i in range(500):
        media = reader.open(path)
        assert int(media.get(indices).sum()) > 0
        assert media.decode(indices[::-1]).crop(Box(5, 7, 30, 41)).shape == (15, 3, 30, 41)
        if i == 49:  # after a warm-up
            child = reader._child.process.pid
            start = rss_mb(), rss_mb(child)
    assert reader._child.process.pid == child  # one decoder process all along
    growth = rss_mb() - start[0], rss_mb(child) - start[1]
    print(f"RSS growth over 450 opens after a warm-up of 50: parent {growth[0]:.2f} MB, decoder {growth[1]:.2f} MB")
    assert growth[0] < 10 and growth[1] < 10
    reader.close()


GOOD = 6
SIZE = 48, 64


def corrupted_variants(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    """30 broken copies of an mp4 (ftyp, free, mdat, then moov: its header is at the end)."""
    mdat = data.index(b"mdat") - 4
    moov = data.index(b"moov") - 4
    out: dict[str, bytes] = {"empty": b""}
    for k, cut in enumerate(sorted(rng.choice(np.arange(1, len(data)), 8, replace=False))):
        out[f"truncated{k}"] = data[:cut]
    for name, (lo, hi), count in (
        ("head", (0, mdat + 8), 4),
        ("moov", (moov, len(data)), 6),
        ("body", (mdat + 8, moov), 6),
    ):
        for k in range(count):
            flipped = bytearray(data)
            for pos in rng.choice(np.arange(lo, hi), int(rng.integers(1, 5)), replace=False):
                flipped[pos] ^= int(rng.integers(1, 256))
            out[f"flipped-{name}{k}"] = bytes(flipped)
    for k in range(3):
        out[f"garbage{k}"] = rng.bytes(int(rng.integers(1, 20000)))
    for k in range(2):  # garbage behind a plausible mp4 start
        out[f"fake-header{k}"] = data[:40] + rng.bytes(int(rng.integers(100, 5000)))
    return out


@pytest.fixture(scope="module")
def fuzzed_root(tmp_path_factory):
    """A TSN list of 6 good mp4 videos and 30 corrupted copies of one, in a shuffled (seeded) order."""
    root = tmp_path_factory.mktemp("fuzzed")
    rng = np.random.default_rng(2024)
    lines = []
    for i in range(GOOD):
        write_video(str(root / f"good{i}.mp4"), 20 + 2 * i, *SIZE)
        lines.append(f"good{i}.mp4 {20 + 2 * i} {i % 2}")
    variants = corrupted_variants((root / "good0.mp4").read_bytes(), rng)
    assert len(variants) == 30
    for name, data in variants.items():
        (root / f"{name}.mp4").write_bytes(data)
        lines.append(f"{name}.mp4 20 0")
    rng.shuffle(lines)
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root


# never a video: every file of these must be reported bad (the moov box, its header, is at the end)
UNREADABLE = ("empty", "truncated", "garbage", "fake-header")


@pytest.mark.timeout(300)
def test_a_loader_over_fuzzed_videos_skips_every_bad_one_and_yields_every_good_one(fuzzed_root):
    cfg = {"dataset": "list_file", "root": str(fuzzed_root), "val_list": "val.txt", "train_list": "val.txt"}
    cfg.update(num_segments=4, resize=40, crop_size=32, max_bad_fraction=1.0, decode_timeout_s=10.0)
    loader = build_loader({**cfg, "num_workers": 2, "loader_timeout_s": 120}, "val", batch_size=4, seed=0)
    dataset = loader.dataset
    names = [os.path.basename(r.path)[: -len(".mp4")] for r in dataset.records]
    returned = []
    for clips, _, indices in loader:
        assert clips.shape[1:] == (4, 1, 3, 32, 32) and clips.dtype == torch.uint8
        returned += indices.tolist()
    assert len(returned) == len(dataset) == GOOD + 30  # one clip per listed video: bad ones replaced
    bad = {os.path.basename(p)[: -len(".mp4")] for p in dataset.bad_files.files()}
    assert not {n for n in bad if n.startswith("good")}  # only broken copies are reported
    assert {n for n in names if n.startswith(UNREADABLE)} <= bad
    assert {names[i] for i in returned} == set(names) - bad  # every readable video, good ones included, no bad one
    report = dataset.bad_files.epoch_report()
    assert report.total_files == len(bad) and {os.path.basename(p)[:-4] for p in report.new_files} == bad
    print(f"{len(bad)} of 30 corrupted copies reported bad: {sorted(bad)}")
    dataset.close()
