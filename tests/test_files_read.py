"""ean.files_read: recordings of the files a computation reads, nested, and the memo kept while they stand."""

from __future__ import annotations

from ean.files_read import memo_while_unchanged, note, recording


def test_nested_recordings_that_noted_the_same_files_each_end_as_themselves(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a\n")
    with recording() as outer:
        note(path)
        with recording() as inner:
            note(path)
        assert inner == outer  # equal contents, two recordings
        note(tmp_path / "later.csv")
    assert str(tmp_path / "later.csv") in outer and str(tmp_path / "later.csv") not in inner


def test_a_memoised_answer_stands_while_its_files_do_and_notes_them_again(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("a\nb\n")
    calls = []

    @memo_while_unchanged
    def count(name: str) -> int:
        calls.append(name)
        note(tmp_path / name)
        return len((tmp_path / name).read_text().split())

    assert count("classes.txt") == 2
    with recording() as read:
        assert count("classes.txt") == 2  # from the memo, the file noted for this recording too
    assert calls == ["classes.txt"] and str(path) in read
    path.write_text("a\nb\nc\n")
    assert count("classes.txt") == 3 and len(calls) == 2
