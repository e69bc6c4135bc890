"""Report files are written whole: a failed write leaves the old file, nothing half-written, no temporary file."""

from __future__ import annotations

import pytest

from reports.files import atomic_path, write_text


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
