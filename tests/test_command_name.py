"""A command prints itself back (usage line, resume hint) in the form it was started in."""

from __future__ import annotations

import sys

import pytest

from ean.command_name import command_name
from runners.run import parse_args
from runners.session import shell_command


def test_the_console_script_and_the_module_form_each_print_themselves(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/ean-run", "studies/demo.yaml"])
    assert command_name("python -m runners.run") == "ean-run"
    assert (
        shell_command(["studies/demo.yaml", "--seeds", "0,1", "a b"]) == "ean-run studies/demo.yaml --seeds 0,1 'a b'"
    )
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    assert capsys.readouterr().out.startswith("usage: ean-run ")
    monkeypatch.setattr(sys, "argv", ["/work/main/runners/run.py", "studies/demo.yaml"])  # python -m runners.run
    assert shell_command(["studies/demo.yaml"]) == "python -m runners.run studies/demo.yaml"
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m runners.run ")
