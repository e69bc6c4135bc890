"""A hang fails, never stalls: a hung loader worker raises within ``loader_timeout_s``, and a hung synthetic
video encoder raises within ``video_timeout_s`` naming the video (pytest-timeout turns a stall into a failure)."""

import os
import sys
import time

import pytest
from torch.utils.data import Dataset

import ean.data.builder as builder
from ean.data import DataError, build_loader, generate_synthetic
from ean.data.identity import SPEED_KEYS, data_identity
from ean.data.synthetic import generate

SMALL = {"num_videos": 20, "num_classes": 10, "size": 32, "min_frames": 12, "max_frames": 16}


class Sleeps(Dataset):
    """Every item takes (nearly) for ever: a worker stuck in a decoder or on a dead file system."""

    def __len__(self):
        return 4

    def __getitem__(self, item):
        time.sleep(600)


@pytest.mark.timeout(60)
def test_a_hung_loader_worker_raises_within_the_timeout(monkeypatch):
    monkeypatch.setattr(builder, "build_dataset", lambda cfg, split: Sleeps())
    loader = build_loader({"num_workers": 1, "loader_timeout_s": 2}, "val", batch_size=1, seed=0)
    with pytest.raises(RuntimeError, match="DataLoader timed out after 2"):
        next(iter(loader))
    del loader  # stops the (persistent) worker


def test_the_loader_timeout_applies_with_workers_only_and_is_not_part_of_the_data(monkeypatch):
    monkeypatch.setattr(builder, "build_dataset", lambda cfg, split: Sleeps())
    assert build_loader({"num_workers": 1}, "val", 1, 0).timeout == 300  # the default
    assert build_loader({"num_workers": 1, "loader_timeout_s": 0}, "val", 1, 0).timeout == 0  # none
    assert build_loader({"num_workers": 0, "loader_timeout_s": 5}, "val", 1, 0).timeout == 0  # no workers
    with pytest.raises(DataError, match="loader_timeout_s"):
        build_loader({"num_workers": 1, "loader_timeout_s": -1}, "val", 1, 0)
    assert "loader_timeout_s" in SPEED_KEYS
    cfg = {"dataset": "synthetic", "root": "/nowhere", **SMALL}
    assert data_identity({**cfg, "loader_timeout_s": 7}) == data_identity(cfg)


FAULTY_WRITER = os.path.join(os.path.dirname(__file__), "faulty_writer.py")


def writer_processes() -> list[str]:
    """The command lines of this process's children that run a synthetic-video writer."""
    found = []
    for child in os.listdir("/proc"):
        try:
            with open(f"/proc/{child}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{child}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and "writer" in command:
            found.append(command)
    return found


@pytest.mark.timeout(60)
def test_a_hung_synthetic_encoder_raises_naming_the_video(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "WRITER", (sys.executable, FAULTY_WRITER, "hang", "3.mp4"))
    root = tmp_path / "data"
    with pytest.raises(TimeoutError, match=r"writing video 3 of 20 of .*data took more than 2 s"):
        generate_synthetic(str(root), video_timeout_s=2, **SMALL)
    assert os.listdir(tmp_path) == []  # neither the dataset nor its scratch folder
    assert writer_processes() == []  # killed (and reaped)
    monkeypatch.undo()
    assert generate_synthetic(str(root), video_timeout_s=2, **SMALL) == str(root)  # a later try writes it
    assert len(os.listdir(root / "videos")) == 20


def test_a_failing_synthetic_encoder_raises_its_error(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "WRITER", (sys.executable, FAULTY_WRITER, "fail", "-"))
    with pytest.raises(RuntimeError, match=r"writing video 1 of 20 .* failed: OSError: .*No space left"):
        generate_synthetic(str(tmp_path / "data"), **SMALL)
    assert os.listdir(tmp_path) == []


def test_a_writer_that_dies_at_start_is_named_with_its_exit_code(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "WRITER", (sys.executable, "-c", "import sys; sys.exit(3)"))
    with pytest.raises(RuntimeError, match=r"writer process died \(exit code 3\) writing video 1 of 20"):
        generate_synthetic(str(tmp_path / "data"), **SMALL)
    assert os.listdir(tmp_path) == []


def test_the_writer_is_a_fresh_process_that_imports_no_torch(tmp_path, monkeypatch):
    """Never a fork of the caller (whose threads, Ray's or torch's, can abort the copy), and cheap to start."""
    script = (
        "import sys, runpy; sys.argv = ['writer', *sys.argv[1:]]; "
        "runpy.run_module('ean.data.synthetic.writer', run_name='__main__', alter_sys=True)"
    )
    probe = tmp_path / "modules.txt"
    monkeypatch.setattr(
        generate,
        "WRITER",
        (
            sys.executable,
            "-c",
            f"import atexit, sys; atexit.register(lambda: open({str(probe)!r}, 'w')"
            f".write(' '.join(sys.modules))); {script}",
        ),
    )
    generate_synthetic(str(tmp_path / "data"), **SMALL)
    modules = probe.read_text().split()
    assert "ean.data.synthetic.generate" in modules and "av" in modules
    assert "torch" not in modules


def test_the_writer_is_watched_whatever_the_number_of_its_pipe(tmp_path):
    """A process holding over a thousand files (Ray's sockets, loader pipes): the pipe's number is above
    1024, which ``select.select`` refuses."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max(soft, hard) < 1200:
        pytest.skip("this machine allows fewer than 1200 open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert generate_synthetic(str(tmp_path / "data"), **SMALL) == str(tmp_path / "data")
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
