"""Bad input to the tool commands (ean.profile, the trained-model figure commands): one ``error: ...`` line naming
the problem, exit status 2, no traceback, nothing loaded or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ean import profile
from reports import features, kernels, saliency

DEMO = str(Path(__file__).resolve().parents[1] / "studies" / "demo.yaml")


def error_line(capsys) -> str:
    """The one line on stderr, which must be an ``error: ...`` line."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize(
    "override,message",
    [
        ("block_options=3", "block_options is a mapping of keyword arguments; set one entry as block_options.NAME"),
        ("fusion_options=[1]", "fusion_options is a mapping"),
        ("block_stages=[4", "block_stages=[4: not a YAML value (expected ',' or ']'"),
        ("noequals", "expected KEY=VALUE, got 'noequals'; keys: backbone, pretrained"),
        ("=3", "expected KEY=VALUE, got '=3'"),
    ],
)
def test_profile_refuses_a_bad_override_by_name(override, message, capsys):
    assert profile.main([override]) == 2
    assert message in error_line(capsys)


@pytest.mark.parametrize("module", [saliency, features, kernels])
def test_figure_commands_refuse_an_mlflow_uri_of_no_store(module, tmp_path, capsys):
    rows = ["tsn", "temporal_conv"] if module is features else ["tsn"]
    assert module.main([DEMO, *rows, "--mlflow-uri", "garbage", "--out", str(tmp_path)]) == 2
    assert "--mlflow-uri 'garbage' is no MLflow tracking store: give sqlite:///PATH.db" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", [saliency, features, kernels])
@pytest.mark.parametrize("below", ["", "sub"])
def test_figure_commands_refuse_an_out_that_is_a_file(module, below, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    rows = ["tsn", "temporal_conv"] if module is features else ["tsn"]
    out = afile / below if below else afile
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert module.main([DEMO, *rows, "--mlflow-uri", uri, "--out", str(out)]) == 2
    assert f"--out {out}: {afile} is a file; the figures go to the folder <out>/figures/" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no store made either


@pytest.mark.parametrize("module", [saliency, features, kernels])
def test_figure_commands_never_create_a_store(module, tmp_path, capsys):
    """A sqlite file that is not there is no study's store: named, not created empty."""
    rows = ["tsn", "temporal_conv"] if module is features else ["tsn"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert module.main([DEMO, *rows, "--mlflow-uri", uri, "--out", str(tmp_path / "out")]) == 2
    assert f"no MLflow store at {tmp_path / 'mlflow.db'}" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_kernels_names_the_valid_stages(capsys):
    with pytest.raises(SystemExit) as exit_:
        kernels.main([DEMO, "tsn", "--stage", "9"])
    assert exit_.value.code == 2
    assert "argument --stage: invalid choice: 9 (choose from 1, 2, 3, 4, 5)" in capsys.readouterr().err
