"""Profiles: one shared file per name, refined by a spec; unknown names and code in a profile refused."""

from __future__ import annotations

import re

import pytest

from study.find import find_spec
from study.profiles import load_shared, profile_names, profile_overrides
from study.spec import SpecError, load_spec, parse_spec

SPEC = {
    "name": "tiny",
    "title": "Tiny",
    "seeds": [0],
    "protocol": {"clips": 1, "crops": 1},
    "columns": ["top1"],
    "rows": [{"id": "a", "label": "A"}],
}


def write_profile(folder, name, overrides):
    (folder / f"{name}.yaml").write_text(f"description: test\noverrides: {overrides}\n")


def test_a_specs_refinement_comes_after_the_shared_overrides(tmp_path):
    write_profile(tmp_path, "smoke", "[data=synthetic, model.num_segments=4]")
    spec = parse_spec({**SPEC, "profiles": {"smoke": ["model.num_segments=2"], "own": ["seed=3"]}})
    assert profile_overrides(spec, "smoke", tmp_path) == [
        "data=synthetic",
        "model.num_segments=4",
        "model.num_segments=2",
    ]
    assert profile_overrides(spec, "own", tmp_path) == ["seed=3"]
    assert profile_names(spec, tmp_path) == ["own", "smoke"]


def test_an_unknown_profile_names_the_valid_ones(tmp_path):
    write_profile(tmp_path, "smoke", "[data=synthetic]")
    with pytest.raises(SpecError, match="unknown profile 'smok'; valid profiles: smoke"):
        profile_overrides(parse_spec(SPEC), "smok", tmp_path)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ("['hydra.run.dir=/tmp']", "sets Hydra.s own settings"),
        ("['model.x=${oc.env:HOME}']", "calls a resolver"),
        ("['+model._target_=os.system']", "names Python code"),
        ("[{_target_: os.system}]", "must be strings"),
        ("data=synthetic", "a profile is a mapping"),
    ],
)
def test_a_shared_profile_is_data_only(tmp_path, overrides, why):
    write_profile(tmp_path, "bad", overrides)
    with pytest.raises(SpecError, match="bad.yaml") as refused:
        load_shared("bad", tmp_path)
    assert re.search(why, str(refused.value)), str(refused.value)


def test_every_papers_study_gets_the_shared_smoke_profile():
    smoke = list(load_shared("smoke"))
    for name in ("table1", "table2", "table3", "table4", "table5", "table6", "table7", "table8", "table9", "table10"):
        spec = load_spec(find_spec(name))
        assert profile_overrides(spec, "smoke")[: len(smoke)] == smoke
