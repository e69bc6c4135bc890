"""Bad input to the data commands (ean.data.check, ean.data.to_frames): refused by name with exit status 2, before
anything is read or written, never a traceback."""

from __future__ import annotations

import pytest

from ean.data.check import main as check_main
from ean.data.to_frames import main as to_frames_main

COMMANDS = {"check": check_main, "to_frames": to_frames_main}


def error_line(capsys) -> str:
    """The one line on stderr, which must be an ``error: ...`` line."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def refused_by_argparse(command, argv: list[str], capsys) -> str:
    """The argparse error line of ``argv``, which must exit with status 2."""
    with pytest.raises(SystemExit) as exit_:
        command(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unknown_dataset_names_the_valid_ones(name, tmp_path, capsys):
    assert COMMANDS[name](["--dataset", "nope", "--root", str(tmp_path)]) == 2
    assert "error: unknown dataset 'nope'. Valid dataset names: diving48, kinetics400," in error_line(capsys)


@pytest.mark.parametrize(
    "item,message",
    [
        ("nokey", "--set expects KEY=VALUE (e.g. --set media=frames), got 'nokey'"),
        ("=3", "--set expects KEY=VALUE"),
        ("size=[1", "--set size=[1: the value is not YAML (expected ',' or ']'"),
    ],
)
@pytest.mark.parametrize("name", COMMANDS)
def test_a_bad_set_item_is_named(name, item, message, something_v2_root, tmp_path, capsys):
    argv = ["--dataset", "something_v2", "--root", str(something_v2_root), "--set", item, "--out", str(tmp_path)]
    assert COMMANDS[name](argv if name == "to_frames" else argv[:-2]) == 2
    assert message in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "flag,value,message",
    [("--workers", "-1", "must be 0 or more, got -1"), ("--timeout", "-5", "must be 0 or more, got -5")],
)
def test_check_refuses_negative_workers_and_timeout(flag, value, message, something_v2_root, capsys):
    argv = ["--dataset", "something_v2", "--root", str(something_v2_root), flag, value]
    assert refused_by_argparse(check_main, argv, capsys).endswith(f"error: argument {flag}: {message}")


def test_check_does_not_generate_the_synthetic_dataset(tmp_path, capsys):
    assert check_main(["--dataset", "synthetic", "--root", str(tmp_path)]) == 2
    assert "dataset 'synthetic' is generated (by the runner, under its root, on first use), not checked" in (
        error_line(capsys)
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--quality", "500", "must be 1 to 100, got 500"),
        ("--quality", "0", "must be 1 to 100, got 0"),
        ("--short-side", "-5", "must be 0 or more, got -5"),
        ("--workers", "-2", "must be 1 or more, got -2"),
        ("--workers", "0", "must be 1 or more, got 0"),
    ],
)
def test_to_frames_refuses_out_of_range_settings(flag, value, message, something_v2_root, tmp_path, capsys):
    argv = ["--dataset", "something_v2", "--root", str(something_v2_root), "--out", str(tmp_path / "f"), flag, value]
    assert refused_by_argparse(to_frames_main, argv, capsys).endswith(f"error: argument {flag}: {message}")
    assert list(tmp_path.iterdir()) == []  # no frames, no .ean_frames.json


@pytest.mark.parametrize("name", ["something_v1", "synthetic", "list_file"])
def test_to_frames_says_which_datasets_it_converts(name, tmp_path, capsys):
    assert to_frames_main(["--dataset", name, "--root", str(tmp_path / "data")]) == 2
    message = error_line(capsys)
    assert f"dataset {name!r} cannot be converted to frames" in message and "'media'" in message
    assert message.endswith("to_frames converts: diving48, kinetics400, something_v2")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("below", ["", "sub"])
def test_to_frames_refuses_an_out_that_is_a_file(below, something_v2_root, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    out = afile / below if below else afile
    assert to_frames_main(["--dataset", "something_v2", "--root", str(something_v2_root), "--out", str(out)]) == 2
    assert f"--out {out}: {afile} is a file; the frames go into a folder" in error_line(capsys)
