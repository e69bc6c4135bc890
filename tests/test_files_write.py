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
