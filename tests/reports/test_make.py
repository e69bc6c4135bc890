"""The command line and ``make_report``: files written, errors reported, the layering rule kept."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reports.make import main, make_report
from tests.reports.golden_files import mask_run_ids

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "data" / "fixture_blocks.yaml"


def test_report_writes_tables_csv_and_figures(fixture_report):
    report, out = fixture_report
    names = {p.name for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert (out / ".fixture_blocks.report.json").is_file()  # the folder's record (reports.folder)
    assert names == {
        "fixture_blocks.md",
        "fixture_blocks.tex",
        "fixture_blocks_standalone.tex",
        "fixture_blocks.csv",
        "fixture_blocks_runs.csv",
    }
    assert set(report.files) >= {out / n for n in names}
    assert (out / "fixture_blocks.md").read_text(encoding="utf-8") == report.markdown
    golden = (Path(__file__).parent / "golden" / "fixture_blocks.md").read_text(encoding="utf-8")
    assert mask_run_ids(report.markdown) == golden


def test_csv_holds_numbers_in_absolute_units(fixture_report):
    _, out = fixture_report
    table = pd.read_csv(out / "fixture_blocks.csv").set_index("row")
    assert list(table.index) == ["only_soitr", "s_block", "l_block", "incep_block", "eab", "dead_block"]
    assert table.loc["eab", "top1_mean"] == pytest.approx(51.9)
    assert table.loc["eab", "params_mean"] == 36_021_000 and table.loc["eab", "params_paper"] == pytest.approx(36e6)
    assert table.loc["l_block", "seeds_finished"] == 2 and table.loc["l_block", "seeds_planned"] == 3
    assert table.loc["eab", "top1_delta_low"] > 0 and table.loc["s_block", "top1_delta_low"] < 0
    runs = pd.read_csv(out / "fixture_blocks_runs.csv", keep_default_na=False)
    assert len(runs) == 21 and runs["used"].sum() == 16
    assert set(runs.loc[runs["protocol"] == "10x3", "excluded_because"]) == {
        "protocol 10x3 (this table: 1x1, clips x crops)"
    }


def test_cli_writes_the_requested_formats_and_prints_the_table(fixture_store, tmp_path, capsys):
    uri, _ = fixture_store
    code = main([str(FIXTURE), "--format", "md,latex", "--out", str(tmp_path), "--mlflow-uri", uri, "--no-figures"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| Models " in printed and f"wrote {tmp_path / 'fixture_blocks.tex'}" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".fixture_blocks.report.json",
        ".fixture_blocks.report.lock",
        "fixture_blocks.md",
        "fixture_blocks.tex",
        "fixture_blocks_standalone.tex",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "pdf"], "unknown format(s) pdf; valid formats: md, latex, csv"),
        (["--delta", "top7"], "cannot compare top7 to the baseline"),
        (["--dataset", "nope"], "--dataset 'nope': no run of fixture_blocks has it; its runs have: "),
        (["--code-version", "9.9"], "--code-version '9.9': no run of fixture_blocks has it; its runs have: "),
        (["--data-fingerprint", "fp9"], "--data-fingerprint 'fp9': no run of fixture_blocks has it; its runs have: "),
    ],
)
def test_cli_rejects_bad_options(fixture_store, tmp_path, capsys, args, message):
    uri, _ = fixture_store
    assert main([str(FIXTURE), "--out", str(tmp_path), "--mlflow-uri", uri, *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "a refused report writes nothing"


def test_cli_rejects_an_output_file_a_negative_precision_and_no_store(fixture_store, tmp_path, capsys):
    uri, _ = fixture_store
    (tmp_path / "afile").write_text("x")
    assert main([str(FIXTURE), "--out", str(tmp_path / "afile"), "--mlflow-uri", uri]) == 2
    assert "afile is a file, not a folder; the report writes several files into a folder" in capsys.readouterr().err
    assert main([str(FIXTURE), "--out", str(tmp_path / "afile" / "x"), "--mlflow-uri", uri]) == 2  # a file on the way
    assert "afile is a file, not a folder" in capsys.readouterr().err
    assert main([str(FIXTURE), "--format", "", "--out", str(tmp_path / "r"), "--mlflow-uri", uri]) == 2
    assert "no format given; valid formats: md, latex, csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([str(FIXTURE), "--decimals", "-1", "--mlflow-uri", uri])
    assert exit_.value.code == 2 and "--decimals must be 0 or more" in capsys.readouterr().err
    assert main([str(FIXTURE), "--mlflow-uri", "garbage", "--out", str(tmp_path / "r")]) == 2
    assert "is no MLflow tracking store" in capsys.readouterr().err


def test_cli_reports_a_bad_spec_and_an_unknown_study(fixture_store, tmp_path, capsys):
    uri, _ = fixture_store
    bad = tmp_path / "bad.yaml"
    bad.write_text(FIXTURE.read_text(encoding="utf-8").replace("baseline: only_soitr", "baseline: nope"))
    assert main([str(bad), "--mlflow-uri", uri, "--out", str(tmp_path)]) == 2
    assert "bad.yaml: baseline 'nope' is not a row id" in capsys.readouterr().err
    table8 = REPO / "studies" / "table8.yaml"
    assert main([str(table8), "--mlflow-uri", uri, "--out", str(tmp_path)]) == 2
    assert "no MLflow experiment named 'table8'" in capsys.readouterr().err


def test_make_report_takes_a_path_and_a_generated_date(fixture_store, tmp_path):
    uri, _ = fixture_store
    report = make_report(FIXTURE, out=tmp_path, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert report.table.provenance.generated == "X" and report.files == [tmp_path / "fixture_blocks.md"]


def test_module_entry_point_has_help():
    result = subprocess.run(
        [sys.executable, "-m", "reports.make", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    options = ("--format", "--out", "--mlflow-uri", "--no-figures", "--no-paper", "--dataset", "--code-version")
    for option in (*options, "--data-fingerprint"):
        assert option in result.stdout


def test_reports_never_imports_ray_or_hydra():
    for path in (REPO / "reports").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"ray", "hydra", "omegaconf"}, f"{path.name} imports {name}"


def test_figures_from_the_same_runs_are_reused_and_drawn_again_when_a_run_changes(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    import reports.figures
    from tests.reports.mlflow_fixture import write_fixture_store

    uri, spec = write_fixture_store(tmp_path / "store")  # its own store: this test changes a run
    first = make_report(spec, out=tmp_path / "out", tracking_uri=uri, formats=("md",), generated="X")
    drawn = sorted(f for f in first.files if "figures" in f.parts)
    assert drawn

    def no_drawing(*args, **kwargs):
        raise AssertionError("a figure was drawn again")

    monkeypatch.setattr(reports.figures, "plot_accuracy_vs_flops", no_drawing)
    again = make_report(spec, out=tmp_path / "out", tracking_uri=uri, formats=("md",), generated="X")
    assert sorted(f for f in again.files if "figures" in f.parts) == drawn
    run_id = again.table.provenance.run_ids[0][1][0]
    MlflowClient(uri).log_metric(run_id, "top1", 1.0)  # a run's result changes: the figures must follow
    with pytest.raises(AssertionError, match="drawn again"):
        make_report(spec, out=tmp_path / "out", tracking_uri=uri, formats=("md",), generated="X")


def test_a_folder_holds_one_report_an_earlier_reports_files_it_did_not_write_are_removed(fixture_store, tmp_path):
    """A report in every format with figures, then one of a spec without the +EAB row, in Markdown only: the
    LaTeX and CSV files (which still had +EAB) and +EAB's per-class figure are gone, so that no file in the
    folder disagrees with the table; a figure another tool drew there is kept, and so is a file of the report
    changed since it was written. Without figures, the earlier figures go too."""
    import yaml

    uri, _ = fixture_store
    out = tmp_path / "out"
    make_report(FIXTURE, out=out, tracking_uri=uri, generated="X")
    eab_figures = sorted((out / "figures").glob("fixture_blocks_classes_eab.*"))
    assert eab_figures and (out / "fixture_blocks.tex").is_file()
    other_tool = out / "figures" / "fixture_blocks_kernels_eab_seed0_video0.png"
    other_tool.write_bytes(b"png")
    edited = out / "fixture_blocks_standalone.tex"
    edited.write_text(edited.read_text() + "% my edit\n")
    data = yaml.safe_load(FIXTURE.read_text())
    data["rows"] = [row for row in data["rows"] if row["id"] != "eab"]
    smaller = tmp_path / "fixture_blocks.yaml"
    smaller.write_text(yaml.safe_dump(data))
    report = make_report(smaller, out=out, tracking_uri=uri, formats=("md",), generated="X")
    assert sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith(".")) == [
        "fixture_blocks.md",
        "fixture_blocks_standalone.tex",  # changed since: not the report's any more
    ]
    assert {p.name for p in report.removed} >= {"fixture_blocks.tex", "fixture_blocks.csv", "fixture_blocks_runs.csv"}
    assert not any(f.exists() for f in eab_figures) and set(eab_figures) <= set(report.removed)
    assert other_tool.is_file()
    figures = {p for p in (out / "figures").iterdir() if not p.name.startswith(".")}
    assert figures == {*(f for f in report.files if "figures" in f.parts), other_tool}
    make_report(smaller, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert [p.name for p in (out / "figures").iterdir() if not p.name.startswith(".")] == [other_tool.name]


def test_a_report_never_removes_a_file_it_did_not_write(fixture_store, tmp_path):
    """A folder of the user's own with a file named as a report's, and another study's report in the same folder:
    neither is touched by the study's reports, whatever formats and figures they write."""
    import yaml

    uri, _ = fixture_store
    out = tmp_path / "paper"
    out.mkdir()
    (out / "fixture_blocks.tex").write_text("my own table")
    make_report(FIXTURE, out=out, tracking_uri=uri, formats=("md",), draw_figures=False, generated="X")
    assert (out / "fixture_blocks.tex").read_text() == "my own table"
    first = make_report(FIXTURE, out=out, tracking_uri=uri, generated="X")  # with figures
    drawn = [f for f in first.files if "figures" in f.parts]
    other_uri = _renamed_fixture_store(tmp_path / "other", "other_study")
    other = tmp_path / "other_study.yaml"
    other.write_text(yaml.safe_dump({**yaml.safe_load(FIXTURE.read_text()), "name": "other_study"}))
    for figures in (True, False):  # its figures drawn, then left out
        theirs = make_report(other, out=out, tracking_uri=other_uri, draw_figures=figures, generated="X")
        assert any("figures" in f.parts for f in theirs.files) == figures
        assert not [f for f in theirs.removed if "fixture_blocks" in f.name]
    assert drawn and all(f.is_file() for f in drawn) and (out / "fixture_blocks.md").is_file()


def _renamed_fixture_store(root: Path, study: str | None = None, dataset: str | None = None) -> str:
    """A store of the fixture's runs as the runs of ``study``, and all on ``dataset`` if given; its URI."""
    from mlflow.tracking import MlflowClient

    from study import mlflow_schema as S
    from tests.reports.mlflow_fixture import write_fixture_store

    uri, spec = write_fixture_store(root)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(spec.name)
    if study:
        client.rename_experiment(experiment.experiment_id, study)
    for run in client.search_runs([experiment.experiment_id], max_results=1000):
        if study:
            client.set_tag(run.info.run_id, S.TAG_STUDY, study)
        if dataset and run.data.tags.get(S.TAG_KIND) == S.KIND_TRIAL:
            client.set_tag(run.info.run_id, S.TAG_DATASET, dataset)
    return uri


def test_a_table_of_smoke_runs_goes_beside_the_studys_own_without_the_papers_values(tmp_path, monkeypatch):
    """Runs on the generated synthetic dataset only (a smoke profile's): ``reports.make`` by hand writes their
    table to ``<study>-dataset-synthetic``, never to the study's own folder, and its CSV, like the table, has
    no paper values (they say nothing of those runs)."""
    uri = _renamed_fixture_store(tmp_path / "store", dataset="synthetic")
    monkeypatch.chdir(tmp_path)
    assert main([str(FIXTURE), "--mlflow-uri", uri, "--no-figures"]) == 0
    reports = tmp_path / "outputs" / "reports"
    assert [p.name for p in reports.iterdir()] == ["fixture_blocks-dataset-synthetic"]
    table = pd.read_csv(reports / "fixture_blocks-dataset-synthetic" / "fixture_blocks.csv")
    assert "top1_mean" in table and not [c for c in table.columns if c.endswith("_paper")]
    assert main([str(FIXTURE), "--mlflow-uri", uri, "--no-figures", "--out", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "fixture_blocks.md").is_file()  # --out wins


def test_a_table_of_pinned_runs_goes_beside_the_studys_own_unless_out_is_given(fixture_store, tmp_path, monkeypatch):
    """``--dataset kinetics400`` (another dataset's runs) writes ``outputs/reports/fixture_blocks-dataset-
    kinetics400``, not over the study's own table; the folder names each pin, made safe for a file name."""
    from reports.make import default_out

    uri, _ = fixture_store
    monkeypatch.chdir(tmp_path)
    assert main([str(FIXTURE), "--mlflow-uri", uri, "--no-figures", "--format", "md"]) == 0
    own = (tmp_path / "outputs" / "reports" / "fixture_blocks" / "fixture_blocks.md").read_text()
    assert main([str(FIXTURE), "--mlflow-uri", uri, "--no-figures", "--format", "md", "--dataset", "kinetics400"]) == 0
    pinned = tmp_path / "outputs" / "reports" / "fixture_blocks-dataset-kinetics400" / "fixture_blocks.md"
    assert "Kinetics" in pinned.read_text() or "kinetics400" in pinned.read_text()
    assert (tmp_path / "outputs" / "reports" / "fixture_blocks" / "fixture_blocks.md").read_text() == own
    reports = Path("outputs") / "reports"
    assert default_out("t8") == reports / "t8"
    assert default_out("t8", "synthetic", "0.4.2", "sha256:0123456789abcdef") == (
        reports / "t8-dataset-synthetic-code-0.4.2-data-0123456789ab"
    )
    assert default_out("t8", code_version="1.0+local/x") == reports / "t8-code-1.0_local_x"
