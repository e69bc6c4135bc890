"""A user's own config groups (``--config-dir``): new options on Hydra's search path, under the data-only policy,
never shadowing the project's files, and part of the composer cache's digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from runners.cache import DiskCache
from runners.compose import Composer, CompositionError, conf_digest
from runners.conf_dirs import search_path, use_config_dirs, yaml_files
from runners.run import main
from study.locations import CONF_DIR
from tests.runners.conftest import cli_args, tiny_spec, write_yaml

AVG_EAB = "# @package model\nblock: eab\nblock_options: {pool: avg, inter_relu: true, dilation: true}\n"


@pytest.fixture(autouse=True)
def _no_user_dirs():
    yield
    use_config_dirs([])


def user_conf(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_config_dir_adds_an_option_to_a_group(tmp_path):
    mine = user_conf(tmp_path / "conf", {"block/eab_avg.yaml": AVG_EAB})
    with Composer([CONF_DIR, mine], DiskCache("compose", tmp_path / "cache")) as composer:
        config = composer.compose(["block=eab_avg"])
    assert config["model"]["block"] == "eab" and config["model"]["block_options"]["pool"] == "avg"
    unknown = "unknown block 'eab_avg'.*valid block options: eab, incep_block"
    with (
        Composer(CONF_DIR, DiskCache("compose", tmp_path / "cache")) as composer,
        pytest.raises(CompositionError, match=unknown),
    ):
        composer.compose(["block=eab_avg"])


def test_use_config_dirs_puts_the_folder_on_the_default_search_path(tmp_path):
    mine = user_conf(tmp_path / "conf", {"block/eab_avg.yaml": AVG_EAB})
    use_config_dirs([mine])
    assert search_path()[:2] == [CONF_DIR, mine.resolve()]
    with Composer(cache=DiskCache("compose", tmp_path / "cache")) as composer:
        assert composer.compose(["block=eab_avg"])["model"]["block_options"]["pool"] == "avg"
        with pytest.raises(CompositionError, match="valid block options: eab, eab_avg, incep_block"):
            composer.compose(["block=eab_wide"])
    use_config_dirs([])
    assert search_path() == [CONF_DIR]


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(CompositionError, match="--config-dir: no such folder"):
        use_config_dirs([tmp_path / "nope"])


def test_a_user_file_obeys_the_data_only_policy(tmp_path):
    mine = user_conf(tmp_path / "conf", {"block/sneaky.yaml": "# @package model\nblock: ${oc.env:HOME}\n"})
    with pytest.raises(CompositionError, match=r"conf breaks the data-only policy: block/sneaky.yaml"):
        Composer([CONF_DIR, mine], DiskCache("compose", tmp_path / "cache"))


def test_a_user_file_may_not_shadow_a_project_file(tmp_path):
    mine = user_conf(tmp_path / "conf", {"block/eab.yaml": AVG_EAB})
    with pytest.raises(CompositionError, match="block/eab.yaml is in .* and .*give yours another name"):
        Composer([CONF_DIR, mine], DiskCache("compose", tmp_path / "cache"))


def test_a_changed_user_file_is_composed_afresh_not_served_from_the_cache(tmp_path):
    mine = user_conf(tmp_path / "conf", {"block/eab_avg.yaml": AVG_EAB})
    cache = DiskCache("compose", tmp_path / "cache")
    before = conf_digest([CONF_DIR, mine])
    with Composer([CONF_DIR, mine], cache) as composer:
        assert composer.compose(["block=eab_avg"])["model"]["block_options"]["pool"] == "avg"
    (mine / "block" / "eab_avg.yaml").write_text(AVG_EAB.replace("pool: avg", "pool: max"))
    assert conf_digest([CONF_DIR, mine]) != before
    with Composer([CONF_DIR, mine], cache) as composer:
        assert composer.compose(["block=eab_avg"])["model"]["block_options"]["pool"] == "max"


def test_the_runner_plans_a_row_of_a_user_option_with_config_dir(study_dir, capsys):
    mine = user_conf(study_dir / "myconf", {"block/eab_avg.yaml": AVG_EAB})
    row = {"id": "avg", "label": "EAB, avg pool", "overrides": ["block=eab_avg", "regions=none"]}
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([row]))
    assert main(cli_args(study_dir, spec, "--dry-run")) == 2
    assert "unknown block 'eab_avg'" in capsys.readouterr().err
    assert main(cli_args(study_dir, spec, "--dry-run", "--config-dir", str(mine))) == 0
    assert "tiny/avg/seed0" in capsys.readouterr().out
    assert main(cli_args(study_dir, spec, "--dry-run", "--config-dir", str(study_dir / "none"))) == 2
    assert "--config-dir: no such folder" in capsys.readouterr().err


def test_a_linked_group_folder_is_checked_and_watched_as_hydra_reads_it(tmp_path):
    """A group folder that is a link (``conf/block -> elsewhere/block``): Hydra reads through it, so its files
    obey the policy, may not shadow the project's, and an edit of one composes afresh (the caches see it)."""
    from runners.plan_cache import CONFIG_SUFFIXES, tree_signature

    real = user_conf(tmp_path / "elsewhere", {"block/eab_avg.yaml": AVG_EAB})
    mine = tmp_path / "conf"
    mine.mkdir()
    (mine / "block").symlink_to(real / "block", target_is_directory=True)
    unlooped = tree_signature([mine], CONFIG_SUFFIXES)
    (mine / "loop").symlink_to(mine, target_is_directory=True)  # a cycle is walked once
    assert tree_signature([mine], CONFIG_SUFFIXES) == unlooped
    assert [p.relative_to(mine).as_posix() for p in yaml_files(mine)] == ["block/eab_avg.yaml"]
    cache = DiskCache("compose", tmp_path / "cache")
    before, signature = conf_digest([CONF_DIR, mine]), tree_signature([mine], CONFIG_SUFFIXES)
    with Composer([CONF_DIR, mine], cache) as composer:
        assert composer.compose(["block=eab_avg"])["model"]["block_options"]["pool"] == "avg"
    (real / "block" / "eab_avg.yaml").write_text(AVG_EAB.replace("pool: avg", "pool: max"))
    assert conf_digest([CONF_DIR, mine]) != before and tree_signature([mine], CONFIG_SUFFIXES) != signature
    with Composer([CONF_DIR, mine], cache) as composer:
        assert composer.compose(["block=eab_avg"])["model"]["block_options"]["pool"] == "max"
    (real / "block" / "sneaky.yaml").write_text("# @package model\nblock: ${oc.env:HOME}\n")
    with pytest.raises(CompositionError, match=r"conf breaks the data-only policy: block/sneaky.yaml"):
        Composer([CONF_DIR, mine], cache)
    (real / "block" / "sneaky.yaml").unlink()
    (real / "block" / "eab.yaml").write_text(AVG_EAB)
    with pytest.raises(CompositionError, match="block/eab.yaml is in .* and .*give yours another name"):
        Composer([CONF_DIR, mine], cache)
