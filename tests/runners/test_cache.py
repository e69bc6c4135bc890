"""The on-disk cache: values by key, shared by processes, never in the way; counts come from it."""

from __future__ import annotations

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
        count_trials(again, DiskCache("counts", tmp_path / "empty"))
