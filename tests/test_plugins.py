"""Variants from a researcher's own package (``ean.plugins`` entry points): found with no edit to this
repository, under the registry rules (a taken name refused, naming the entry point) and the data-only policy.

Each test runs Python in a subprocess whose path holds a plugin distribution (a package and its ``.dist-info``),
so that the registries of this process never see a plugin. The fast tests write the distribution's files
by hand; the slow one builds and installs a real plugin package with pip and runs a one-row study with its block.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.runners.conftest import tiny_spec, write_yaml

REPO = Path(__file__).resolve().parents[1]

MY_BLOCK = '''
from ean.models.registries import BLOCKS


def my_block(channels: int, num_segments: int, pool: str = "max", inter_relu: bool = True):
    """The S-Block under a name of the plugin's own."""
    return BLOCKS.get("s_block")(channels=channels, num_segments=num_segments, pool=pool, inter_relu=inter_relu)


def register():
    BLOCKS.add("my_block", my_block)
'''
MY_BLOCK_CONF = "# @package model\nblock: my_block\nblock_options: {pool: avg, inter_relu: true}\n"
ROW = {"id": "mine", "label": "+My block", "overrides": ["block=my_block", "regions=none"]}


def plugin_files(site: Path, dist: str, files: dict[str, str], entry: str, version: str = "0.1") -> Path:
    """Writes an installed plugin distribution under ``site``: its files and a ``.dist-info`` with ``entry``."""
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[ean.plugins]\n{entry}\n")
    return site


def python(site: Path, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` with the plugin's ``site`` (and this checkout) on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def runner_args(workdir: Path, spec: Path | str, *extra: str) -> list[str]:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    return ["-m", "runners.run", str(spec), "--mlflow-uri", uri, "--storage", str(workdir / "runs"), *extra]


@pytest.fixture
def my_plugin(tmp_path) -> Path:
    """The plugin ``myplug``: a block ``my_block`` registered by a function, its config file beside it."""
    files = {"myplug/__init__.py": MY_BLOCK, "myplug/conf/block/my_block.yaml": MY_BLOCK_CONF}
    return plugin_files(tmp_path / "site", "myplug", files, "mine = myplug:register")


def test_a_plugin_block_and_its_config_file_are_found_and_planned(my_plugin, tmp_path):
    probe = (
        "from ean.models import BLOCKS; from runners.conf_dirs import search_path; "
        "print('my_block' in BLOCKS.names(), search_path()[-1])"
    )
    shown = python(my_plugin, tmp_path, "-c", probe)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["True", str(my_plugin / "myplug" / "conf")]

    spec = write_yaml(tmp_path / "tiny.yaml", tiny_spec([ROW]))
    planned = python(my_plugin, tmp_path, *runner_args(tmp_path, spec, "--dry-run"))
    assert planned.returncode == 0, planned.stderr
    assert "tiny/mine/seed0" in planned.stdout


def test_a_trial_key_holds_the_version_of_each_plugin_whose_variant_it_uses(tmp_path):
    """Bumping a plugin's version changes the keys of the trials that use its block, and of no other trial."""
    probe = (
        "from ean.trial import trial_key; from tests.train.helpers import tiny_config; "
        "import sys; config = tiny_config('/no/data')\n"
        "for block in sys.argv[1:]:\n"
        "    config['model']['block'] = block; print(trial_key(config, 1, fingerprint='sha256:0'))"
    )
    files = {"myplug/__init__.py": MY_BLOCK}
    keys = {}
    for version in ("0.1", "0.2"):
        site = plugin_files(tmp_path / version, "myplug", files, "mine = myplug:register", version)
        shown = python(site, tmp_path, "-c", probe, "s_block", "my_block")
        assert shown.returncode == 0, shown.stderr
        keys[version] = shown.stdout.split()
    no_plugin = python(tmp_path / "none", tmp_path, "-c", probe, "s_block")
    assert no_plugin.returncode == 0, no_plugin.stderr
    assert keys["0.1"][0] == keys["0.2"][0] == no_plugin.stdout.split()[0]  # the project's block: keys as before
    assert keys["0.1"][1] != keys["0.2"][1]


def test_a_plugin_that_registers_a_taken_name_is_refused_naming_its_entry_point(tmp_path):
    module = "from ean.models.registries import BLOCKS\n\n\ndef eab(channels, num_segments):\n    return None\n"
    files = {"dupplug/__init__.py": module + "\n\nBLOCKS.register('eab')(eab)\n"}
    site = plugin_files(tmp_path / "site", "dupplug", files, "dup = dupplug")
    where = "plugin entry point 'dup = dupplug' (group ean.plugins) of distribution 'dupplug 0.1'"

    looked_up = python(site, tmp_path, "-c", "from ean.models import BLOCKS; BLOCKS.get('eab')")
    assert looked_up.returncode != 0
    assert f"ean.registry.DuplicateNameError: {where}: block 'eab' is already registered" in looked_up.stderr

    run = python(site, tmp_path, *runner_args(tmp_path, "table8", "--dry-run"))
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: {where}: block 'eab' is already registered (by ean.models.blocks.eab")


@pytest.mark.parametrize("lookup", ["ean.data.registry", "ean.data"])
def test_a_dataset_plugin_builds_on_a_project_dataset_and_a_taken_name_names_the_plugin(tmp_path, lookup):
    """The project's datasets register before any plugin, however the registry is first reached (a review found a
    plugin subclassing ``list_file`` refused as unknown, and a duplicate blamed on the project's own module)."""
    module = (
        "from ean.data.registry import DATASETS\n\n\ndef register():\n"
        "    DATASETS.register('my_list')(type('MyList', (DATASETS.get('list_file'),), {}))\n"
        "    DATASETS.register('synthetic')(type('Mine', (), {}))\n"
    )
    site = plugin_files(tmp_path / "site", "dataplug", {"dataplug/__init__.py": module}, "d = dataplug:register")
    found = python(site, tmp_path, "-c", f"from {lookup} import DATASETS; DATASETS.get('my_list')")
    where = "plugin entry point 'd = dataplug:register' (group ean.plugins) of distribution 'dataplug 0.1'"
    assert f"DuplicateNameError: {where}: dataset 'synthetic' is already registered" in found.stderr, found.stderr
    assert "unknown dataset 'list_file'" not in found.stderr


def test_a_plugin_that_does_not_import_names_its_distribution(tmp_path):
    files = {"brokenplug/__init__.py": "import not_a_module_anywhere\n"}
    site = plugin_files(tmp_path / "site", "brokenplug", files, "broken = brokenplug")
    expected = (
        "error: plugin entry point 'broken = brokenplug' (group ean.plugins) of distribution 'brokenplug 0.1' "
        "could not be loaded: ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    )
    run = python(site, tmp_path, *runner_args(tmp_path, "table8", "--dry-run"))
    assert run.returncode == 2 and expected in run.stderr
    profiled = python(site, tmp_path, "-m", "ean.profile", "block=s_block")  # the tools say it as the runner does
    assert profiled.returncode == 2 and profiled.stderr.strip() == expected, profiled.stderr


@pytest.mark.parametrize(
    ("conf_file", "text", "refusal"),
    [
        ("block/my_block.yaml", "# @package model\nblock: ${oc.env:HOME}\n", "breaks the data-only policy"),
        ("block/eab.yaml", MY_BLOCK_CONF, "block/eab.yaml is in"),
    ],
    ids=["resolver", "shadows-a-project-file"],
)
def test_a_plugins_config_files_obey_the_project_rules(tmp_path, conf_file, text, refusal):
    files = {"myplug/__init__.py": MY_BLOCK, f"myplug/conf/{conf_file}": text}
    site = plugin_files(tmp_path / "site", "myplug", files, "mine = myplug:register")
    run = python(site, tmp_path, *runner_args(tmp_path, "table8", "--dry-run"))
    assert run.returncode == 2
    assert refusal in run.stderr


PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "my-ean-plugin"
version = "0.1.0"

[project.entry-points."ean.plugins"]
my_block = "my_ean_plugin"

[tool.setuptools]
packages = ["my_ean_plugin"]
include-package-data = false

[tool.setuptools.package-data]
my_ean_plugin = ["conf/**/*.yaml"]
"""


@pytest.mark.slow
def test_an_installed_plugin_package_runs_a_one_row_study_with_its_block(tmp_path):
    """pip builds and installs the plugin (into a folder on this subprocess's path, not the shared environment),
    then a one-row study with its block runs end to end with the smoke profile and prints its table."""
    source = tmp_path / "my-ean-plugin"
    (source / "my_ean_plugin" / "conf" / "block").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "my_ean_plugin" / "__init__.py").write_text(MY_BLOCK + "\nregister()\n")
    (source / "my_ean_plugin" / "conf" / "block" / "my_block.yaml").write_text(MY_BLOCK_CONF)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(site), str(source)], check=True, capture_output=True, timeout=300)
    assert (site / "my_ean_plugin" / "conf" / "block" / "my_block.yaml").is_file()

    work = tmp_path / "work"
    work.mkdir()
    spec = write_yaml(work / "mine.yaml", tiny_spec([ROW], name="mine"))
    run = python(site, work, *runner_args(work, spec, "--profile", "smoke"), timeout=840)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "+My block" in run.stdout

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mine")
    runs = client.search_runs([experiment.experiment_id], "tags.`ean.kind` = 'trial'")
    assert [(r.info.status, r.data.params["model.block"]) for r in runs] == [("FINISHED", "my_block")]
