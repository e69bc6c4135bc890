"""The on-disk cache: values by key, shared by processes, never in the way; counts come from it."""

from __future__ import annotations

import dataclasses

import pytest

from runners.cache import DiskCache
from runners.plan import build_plan, count_trials
from study.find import find_spec
from study.profiles import profile_overrides
from study.spec import load_spec


def test_a_value_comes_back_by_its_key_in_another_cache_object(tmp_path):
    DiskCache("kind", tmp_path).put({"b": 1, "a": [1, 2]}, {"v": 3})
    assert DiskCache("kind", tmp_path).get({"a": [1, 2], "b": 1}) == {"v": 3}  # key order does not matter
    assert DiskCache("kind", tmp_path).get({"a": [1, 2], "b": 2}) is None
    assert DiskCache("other", tmp_path).get({"a": [1, 2], "b": 1}) is None


def test_a_folder_that_cannot_be_written_leaves_the_cache_off_not_broken(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = DiskCache("kind", blocker)
    assert cache.get_or_compute("k", lambda: 7) == 7 and cache.get("k") == 7  # kept in memory


def test_a_corrupt_entry_is_a_miss(tmp_path):
    cache = DiskCache("kind", tmp_path)
    cache.put("k", 1)
    cache.path("k").write_text("{not json")
    assert DiskCache("kind", tmp_path).get("k") is None


def test_counts_are_computed_once_per_network_then_read(tmp_path, monkeypatch):
    spec = load_spec(find_spec("table8"))
    trials = build_plan(spec, profile_overrides(spec, "smoke"), [], [0, 1], tmp_path)
    count_trials(trials, DiskCache("counts", tmp_path))
    first = [t.counts for t in trials]

    def no_building(*args, **kwargs):
        raise AssertionError("a cached network was built again")

    monkeypatch.setattr("ean.profile.profile_model", no_building)
    again = build_plan(spec, profile_overrides(spec, "smoke"), [], [0, 1], tmp_path)
    count_trials(again, DiskCache("counts", tmp_path))
    assert [t.counts for t in again] == first and len({c.params for c in first}) > 1
    with pytest.raises(AssertionError, match="built again"):
        count_trials([dataclasses.replace(t, counts=None) for t in again], DiskCache("counts", tmp_path / "empty"))


def test_counts_are_counted_again_after_the_code_changed(tmp_path, monkeypatch):
    """The same network and version, other sources (an edit of a module, e.g. a layer added): counted again."""
    spec = load_spec(find_spec("table8"))
    trials = build_plan(spec, profile_overrides(spec, "smoke"), [], [0], tmp_path)[:1]
    count_trials(trials, DiskCache("counts", tmp_path))
    built: list = []
    monkeypatch.setattr("ean.profile.profile_model", lambda model: built.append(model) or _Counted(1, 2))
    count_trials([dataclasses.replace(trials[0], counts=None)], DiskCache("counts", tmp_path))
    assert built == []
    monkeypatch.setattr("runners.code_digest.code_digest", lambda: "sha256:edited")
    again = [dataclasses.replace(trials[0], counts=None)]
    count_trials(again, DiskCache("counts", tmp_path))
    assert len(built) == 1 and again[0].counts.params == 1


@dataclasses.dataclass
class _Counted:
    params: int
    macs: int


def test_a_composed_config_is_read_back_without_hydra_and_a_changed_folder_misses(tmp_path, monkeypatch):
    import shutil

    import runners.compose as compose
    from runners.compose import Composer
    from study.locations import CONF_DIR

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    overrides = ["data=synthetic", "model.backbone=resnet18", "seed=3"]
    with Composer(conf, DiskCache("compose", tmp_path)) as composer:
        first = composer.compose(overrides)
    first["model"]["backbone"] = "changed by the caller"

    def no_hydra(overrides):
        raise AssertionError("Hydra composed a cached config again")

    monkeypatch.setattr(compose, "compose_config", no_hydra)
    with Composer(conf, DiskCache("compose", tmp_path)) as composer:
        again = composer.compose(overrides)
        assert again["model"]["backbone"] == "resnet18" and again["seed"] == 3  # a copy, not the caller's dict

    class EveryKeyHits:  # a cache that holds an answer for any overrides: the check must come before it
        def get(self, key):
            return {"x": 1}

    with Composer(conf, EveryKeyHits()) as composer, pytest.raises(compose.CompositionError, match="Hydra sweep"):
        composer.compose([*overrides, "trainer.lr=0.1,0.2"])  # overrides are checked on a hit too
    (conf / "trainer" / "smoke.yaml").write_text((conf / "trainer" / "smoke.yaml").read_text() + "\n# changed\n")
    with Composer(conf, DiskCache("compose", tmp_path)) as composer, pytest.raises(AssertionError, match="again"):
        composer.compose(overrides)
