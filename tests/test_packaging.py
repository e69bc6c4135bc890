"""The distribution: every console command is its module's ``main`` (the ``python -m`` form), every user command
has one, and the wheel holds every tracked file of the packages and of ``studies/`` (and nothing else of theirs)."""

from __future__ import annotations

import importlib
import inspect
import re
import zipfile

import pytest

from tests.packaging import PACKAGES, REPO, build_wheel, console_scripts, installed_name, tracked_files

#: Modules run with ``python -m`` that are not user commands.
INTERNAL = {"ean.data.readers.decode_child", "ean.data.synthetic.writer"}  # processes the library starts
MAIN_BLOCK = re.compile(r'^if __name__ == "__main__":\n    sys\.exit\(main\(\)\)\n', re.MULTILINE)
CLI_BLOCK = re.compile(r'^if __name__ == "__main__":\n    cli\(\)\n', re.MULTILINE)


@pytest.mark.parametrize(("command", "target"), sorted(console_scripts().items()))
def test_a_console_command_is_the_main_its_python_m_form_runs(command, target):
    module_name, _, function = target.partition(":")
    module = importlib.import_module(module_name)
    main = module.main
    assert callable(main) and inspect.signature(main).parameters["argv"].default is None  # None: sys.argv
    if function == "main":
        assert MAIN_BLOCK.search(inspect.getsource(module)), f"{module_name} runs main() otherwise under python -m"
        return
    # a wrapper that ends the process after main() (runners.run.cli): python -m runs the same wrapper
    assert function == "cli" and "exit_now(main())" in inspect.getsource(getattr(module, function))
    assert CLI_BLOCK.search(inspect.getsource(module)), f"{module_name} runs otherwise under python -m"


def test_every_user_command_has_a_console_command():
    with_main = {
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
    }
    scripted = {target.partition(":")[0] for target in console_scripts().values()}
    assert with_main - INTERNAL == scripted


def test_the_wheel_holds_every_tracked_file_of_the_packages_and_the_studies(tmp_path):
    expected = {installed_name(name) for name in tracked_files()} - {None}
    assert "ean_studies/conf/config.yaml" in expected and "ean_studies/table8.yaml" in expected
    wheel = zipfile.ZipFile(build_wheel(tmp_path))
    packaged = {name for name in wheel.namelist() if ".dist-info/" not in name}
    assert sorted(expected - packaged) == []  # a tracked file the wheel lacks (a package-data glob too narrow)
    assert sorted(packaged - expected) == []  # a file the wheel has that git does not track
    entry_points = next(name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert all(f"{command} = {target}" in text for command, target in console_scripts().items())
