"""A report folder's record (``reports.folder``): what a failure, an edit, a file that cannot be removed and a
second report at once leave in the folder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import reports.figures
from reports.folder import ReportFolder, file_digest, read_record
from reports.make import make_report

FIXTURE = Path(__file__).parent / "data" / "fixture_blocks.yaml"


def test_an_edited_figure_is_drawn_again_and_never_removed(fixture_store, tmp_path):
    """A figure changed since it was drawn is not reused as the report's (it is drawn again); one changed after
    that is left alone by a later report without figures."""
    uri, _ = fixture_store
    out = tmp_path / "out"
    first = make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), generated="X")
    figure = next(f for f in first.files if f.name.endswith("_top1_vs_gflops.png"))
    drawn = figure.read_bytes()
    figure.write_bytes(drawn + b"my edit")
    make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), generated="X")
    assert figure.read_bytes() == drawn  # drawn again: the edited file was not taken as the report's
    figure.write_bytes(drawn + b"my edit")
    later = make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert figure.read_bytes() == drawn + b"my edit" and figure not in later.removed


def test_a_report_that_fails_half_way_leaves_what_it_wrote_to_the_next(fixture_store, tmp_path, monkeypatch):
    """A report in Markdown, then one in every format whose per-class figures fail: the LaTeX, CSV and the figure
    it drew before failing are recorded, and the next report in Markdown alone removes them."""
    uri, _ = fixture_store
    out = tmp_path / "out"
    make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")

    def fails(*args, **kwargs):
        raise RuntimeError("the figure could not be drawn")

    with monkeypatch.context() as patch:
        patch.setattr(reports.figures, "plot_class_improvements", fails)
        with pytest.raises(RuntimeError, match="could not be drawn"):
            make_report(FIXTURE, out=out, tracking_uri=uri, generated="X")
    left = {p.name for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert {"fixture_blocks.tex", "fixture_blocks.csv", "fixture_blocks_top1_vs_gflops.png"} <= left
    assert set(read_record(out, "fixture_blocks")["files"]) >= {
        "fixture_blocks.tex",
        "figures/" + next(n for n in left if n.endswith("_top1_vs_gflops.png")),
    }
    again = make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert {p.name for p in again.removed} >= {"fixture_blocks.tex", "fixture_blocks_top1_vs_gflops.png"}
    assert [p.name for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")] == ["fixture_blocks.md"]


def test_a_file_that_cannot_be_removed_is_a_warning_and_stays_recorded(fixture_store, tmp_path, monkeypatch):
    """Removing a stale file fails (a read-only folder, say): the report still ends, names it in a warning, and
    keeps it in the record, so that a later report removes it."""
    uri, _ = fixture_store
    out = tmp_path / "out"
    make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md", "latex"), draw_figures=False, generated="X")
    unlink = Path.unlink

    def refuses(path, *args, **kwargs):
        if path.name == "fixture_blocks.tex":
            raise PermissionError(13, "Permission denied")
        return unlink(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", refuses)
        report = make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert any("fixture_blocks.tex was not removed (Permission denied)" in w for w in report.warnings)
    assert "fixture_blocks.tex" in read_record(out, "fixture_blocks")["files"]
    later = make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert [p.name for p in later.removed] == ["fixture_blocks.tex"]


def test_one_report_of_a_study_writes_into_a_folder_at_a_time(fixture_store, tmp_path):
    """While one report of the study holds the folder, another waits for it (two drivers ending at once)."""
    uri, _ = fixture_store
    out = tmp_path / "out"
    out.mkdir()
    done = threading.Event()

    def second() -> None:
        make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
        done.set()

    with ReportFolder(out, "fixture_blocks", uri):
        thread = threading.Thread(target=second)
        thread.start()
        assert not done.wait(1.0)  # it waits for the folder
    thread.join(60)
    assert done.is_set() and (out / "fixture_blocks.md").is_file()


def test_stale_figures_behind_a_linked_figures_folder_are_removed(fixture_store, tmp_path):
    """``figures/`` links to another folder (the paper's): the report draws there, and the next report, without
    figures, removes the ones it drew; a recorded name that leaves the folder is never touched."""
    uri, _ = fixture_store
    out, paper = tmp_path / "out", tmp_path / "paper"
    out.mkdir()
    paper.mkdir()
    (out / "figures").symlink_to(paper)
    first = make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), generated="X")
    drawn = sorted(p.name for p in paper.iterdir() if not p.name.startswith("."))  # not the figures' manifest
    assert drawn and {f.name for f in first.files} >= set(drawn)
    outside = tmp_path / "mine.png"
    outside.write_bytes(b"a user's file")
    record = out / ".fixture_blocks.report.json"  # as if the last report had written ../mine.png
    content = json.loads(record.read_text())
    content["files"]["../mine.png"] = file_digest(outside)
    record.write_text(json.dumps(content))
    later = make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert sorted(p.name for p in later.removed) == drawn
    assert [p.name for p in paper.iterdir() if not p.name.startswith(".")] == []
    assert outside.read_bytes() == b"a user's file"
