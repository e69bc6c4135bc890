"""Broken data: empty, truncated and random-bytes videos and a frame folder with a missing frame are
skipped, counted and reported; above the threshold the run stops; the check command lists them; a hung
decode times out."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from ean.data import DataError, build_dataset, build_loader
from ean.data.check import main as check_main
from ean.data.errors import BadMediaError
from ean.data.readers import SubprocessVideoReader
from tests.data.media import write_frames, write_video

GOOD = 8


@pytest.fixture(scope="module")
def broken_root(tmp_path_factory):
    """A TSN list of 8 good clips (mp4, webm, frames), 4 broken ones, and a webm cut in half (readable)."""
    root = tmp_path_factory.mktemp("broken")
    lines = []
    for i in range(GOOD):
        kind = ("mp4", "webm", "frames")[i % 3]
        name = f"good{i}" + ("" if kind == "frames" else f".{kind}")
        if kind == "frames":
            write_frames(str(root / name), 20 + i)
        else:
            write_video(str(root / name), 20 + i)
        lines.append(f"{name} {20 + i} {i % 2}")
    (root / "empty.mp4").write_bytes(b"")
    data = (root / "good0.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "random.webm").write_bytes(np.random.default_rng(0).bytes(5000))
    data = write_video(str(root / "cut.webm"), 40) and (root / "cut.webm").read_bytes()
    (root / "cut.webm").write_bytes(data[: len(data) // 2])  # header intact: opens as a shorter video
    write_frames(str(root / "gappy"), 20)
    os.remove(root / "gappy" / "00007.jpg")
    lines += ["empty.mp4 20 0", "truncated.mp4 20 1", "random.webm 20 0", "gappy 20 1", "cut.webm 40 0"]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root


BAD = {"empty.mp4", "truncated.mp4", "random.webm", "gappy"}  # unreadable: skipped in training
CHECKED = BAD | {"cut.webm"}  # the check command also finds files cut short behind an intact header


def config(root, **extra):
    base = {"dataset": "list_file", "root": str(root), "num_segments": 4, "resize": [48, 64], "crop_size": 32}
    return {**base, "max_bad_fraction": 0.5, **extra}


@pytest.mark.parametrize("timeout", [0, 20.0], ids=["in-process", "decoder-process"])
def test_bad_files_are_skipped_warned_counted_and_reported(broken_root, timeout):
    dataset = build_dataset(config(broken_root, decode_timeout_s=timeout), "val")
    with pytest.warns(UserWarning) as caught:
        items = [dataset[i] for i in range(len(dataset))]
    warned = {os.path.basename(str(w.message).split(":")[0].split()[-1]) for w in caught}
    assert warned >= BAD
    assert all(clip.shape == (4, 1, 3, 32, 32) for clip, _, _ in items)
    returned = {os.path.basename(dataset.records[index].path) for _, _, index in items}
    assert not returned & BAD  # a bad video is replaced by the next good one, with that one's index
    assert {os.path.basename(p) for p in dataset.bad_files.files()} == BAD
    reasons = {os.path.basename(p): r for p, r in dataset.bad_files.files().items()}
    assert "00007.jpg" in reasons["gappy"]
    report = dataset.bad_files.epoch_report()
    assert report.skipped >= 4 and report.total_files == 4 and set(map(os.path.basename, report.new_files)) == BAD
    assert "4 of 13 files bad" in str(report)
    dataset.close()


def test_bad_files_are_counted_across_workers_per_epoch(broken_root):
    loader = build_loader(config(broken_root, num_workers=2), "train", batch_size=1, seed=0)
    for epoch in range(2):
        batches = list(loader)  # the warnings are issued (and shown) in the workers
        assert all(clips.shape == (1, 4, 1, 3, 32, 32) for clips, _, _ in batches)
        report = loader.dataset.bad_files.epoch_report()
        assert report.skipped >= 4 and report.total_files == 4
        assert len(report.new_files) == (4 if epoch == 0 else 0)


def test_above_the_threshold_the_run_stops_naming_the_files(broken_root):
    dataset = build_dataset(config(broken_root, max_bad_fraction=0.2, decode_timeout_s=0), "val")
    with pytest.warns(UserWarning), pytest.raises(DataError) as error:
        for i in range(len(dataset)):
            dataset[i]
    message = str(error.value)
    assert "3 of 13 files are bad, more than max_bad_fraction=0.2" in message
    assert "empty.mp4" in message and "truncated.mp4" in message and "random.webm" in message


def test_check_lists_every_bad_file(broken_root, capsys):
    code = check_main(["--dataset", "list_file", "--root", str(broken_root), "--split", "val", "--timeout", "20"])
    listed = {os.path.basename(line.split("\t")[0]) for line in capsys.readouterr().out.splitlines()}
    assert code == 1 and listed == CHECKED


def test_check_command_line(broken_root):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ean.data.check",
            "--dataset",
            "list_file",
            "--root",
            str(broken_root),
            "--split",
            "val",
        ],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert result.returncode == 1
    assert {os.path.basename(line.split("\t")[0]) for line in result.stdout.splitlines()} == CHECKED
    assert "val: 13/13" in result.stderr and "5 bad file(s)" in result.stderr
    assert "readable of the 40 its header declares" in result.stdout


def test_check_exits_0_on_good_data_and_2_on_a_bad_root(something_v2_root, tmp_path):
    assert check_main(["--dataset", "something_v2", "--root", str(something_v2_root)]) == 0
    assert check_main(["--dataset", "something_v2", "--root", str(tmp_path / "nowhere")]) == 2


def test_a_hanging_decode_times_out_and_the_decoder_is_replaced(tmp_path, something_v2_root):
    hang = tmp_path / "hang.py"  # a decoder that starts, then never answers
    hang.write_text(
        textwrap.dedent(
            "import sys, time\nfrom multiprocessing.connection import Connection\n"
            "replies = Connection(int(sys.argv[2]), readable=False)\nreplies.send_bytes(bytes([0x81]))\n"
            "time.sleep(600)\n"
        )
    )
    reader = SubprocessVideoReader(timeout_s=0.5, command=[sys.executable, str(hang)])
    with pytest.raises(BadMediaError, match="timed out after 0.5 s"):
        reader.open("some.mp4")
    assert reader._child is None  # killed
    video = os.path.join(something_v2_root, "20bn-something-something-v2", "11.webm")
    reader.command = SubprocessVideoReader().command  # the real decoder reads the next file
    frames = reader.open(video).get(np.array([0, 3]))
    assert frames.shape == (2, 3, 48, 64) and frames.dtype == torch.uint8
    reader.close()


HANGING_DECODER = """
import sys, time
sys.path.insert(0, {readers!r})
import decode_child

real_open = decode_child.open_decord


def open_or_hang(path, threads, size=None):
    if path.endswith("hang.mp4"):
        time.sleep(600)  # what decord does on some H.264 files
    return real_open(path, threads, size)


decode_child.open_decord = open_or_hang
fds = [int(a) for a in sys.argv[1:4]]
decode_child.serve(
    decode_child.Connection(fds[0], writable=False),
    decode_child.Connection(fds[1], readable=False),
    decode_child.SharedBuffer(fds[2]),
)
"""


def test_a_hanging_video_is_skipped_and_training_goes_on(tmp_path):
    from ean.data.readers.timeout import CHILD_SCRIPT

    write_video(str(tmp_path / "ok.mp4"), 20)
    write_video(str(tmp_path / "hang.mp4"), 20)
    (tmp_path / "train.txt").write_text("hang.mp4 20 0\nok.mp4 20 1\n")
    script = tmp_path / "hanging_decoder.py"
    script.write_text(HANGING_DECODER.format(readers=os.path.dirname(CHILD_SCRIPT)))
    dataset = build_dataset(config(tmp_path, decode_timeout_s=1.0), "train")
    dataset.media.reader("video").command = [sys.executable, str(script)]
    with pytest.warns(UserWarning, match="hang.mp4: decoding timed out after 1 s"):
        clip, label, index = dataset[0]
    assert (index, label, clip.shape) == (1, 1, (4, 1, 3, 32, 32))
    assert list(dataset.bad_files.files()) == [str(tmp_path / "hang.mp4")]
    assert dataset[1][2] == 1  # the fresh decoder process reads the next file
    dataset.close()
