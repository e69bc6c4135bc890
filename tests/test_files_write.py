"""Files written whole (reports, checkpoints, scores, caches): a failed write leaves the old file, nothing
half-written, no temporary file."""

from __future__ import annotations

import pytest

from ean.files_write import atomic_path, write_text


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    path = write_text(tmp_path / "out" / "table.md", "old\n")
    write_text(path, "new\n")
    assert path.read_text() == "new\n" and [p.name for p in path.parent.iterdir()] == ["table.md"]


def test_a_failed_write_leaves_the_old_file_as_it_was(tmp_path):
    path = write_text(tmp_path / "table.csv", "a,b\n1,2\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("a,b\n3")  # half of the new file, then the writer fails
        assert tmp.suffix == ".csv" and tmp.parent == path.parent
        raise RuntimeError("the writer died")
    assert path.read_text() == "a,b\n1,2\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_durable_write_replaces_the_file_whole(tmp_path):
    path = write_text(tmp_path / "last.json", "1", durable=True)
    with atomic_path(path, durable=True) as tmp:
        tmp.write_text("2")
        assert path.read_text() == "1"  # the old file until the block ends
    assert path.read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["last.json"]


def test_a_cache_lists_no_write_in_progress(tmp_path):
    from runners.cache import DiskCache

    cache = DiskCache("test", tmp_path)
    cache.put({"a": 1}, 2)
    with atomic_path(cache.path({"b": 1})) as tmp:
        tmp.write_text('{"key": {"b": 1}, "value": 3}')
        assert list(cache.stored_keys()) == [{"a": 1}]


def test_a_durable_write_that_cannot_reach_the_disk_fails_and_keeps_the_old_file(tmp_path, monkeypatch):
    import errno
    import os

    import ean.files_write

    path = write_text(tmp_path / "last.pt", "old")

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "input/output error")

    monkeypatch.setattr(ean.files_write.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="input/output error"), atomic_path(path, durable=True) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["last.pt"]
    write_text(path, "new")  # not durable: no fsync asked
    assert path.read_text() == "new"


def test_two_writers_of_one_file_get_temporary_files_of_their_own(tmp_path):
    with atomic_path(tmp_path / "t.json") as first, atomic_path(tmp_path / "t.json") as second:
        assert first != second and first.exists() and second.exists()
        first.write_text("1")
        second.write_text("2")
    # The second ended first; the first replaced its file: the last writer to end wins, whole.
    assert (tmp_path / "t.json").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["t.json"]
