"""The study spec: studies/table8.yaml loads; every kind of invalid spec is rejected with a useful message."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from study.spec import SpecError, load_spec, parse_spec, spec_hash

REPO = Path(__file__).resolve().parents[2]
TABLE8 = REPO / "studies" / "table8.yaml"
FIXTURE = Path(__file__).parent / "data" / "fixture_blocks.yaml"


def test_table8_spec_has_the_papers_rows_in_order():
    spec = load_spec(TABLE8)
    assert spec.name == "table8" and spec.seeds == (0, 1, 2) and spec.protocol.tag == "1x1"
    assert spec.row_ids == ("only_soitr", "s_block", "l_block", "incep_block", "eab")
    assert [r.overrides for r in spec.rows] == [
        ("block=none",),
        ("block=s_block",),
        ("block=l_block",),
        ("block=incep_block",),
        ("block=eab",),
    ]
    assert spec.overrides == ("model=ean8f_rgb", "data=something_v1", "trainer=paper")
    assert spec.profiles == {}  # the shared smoke profile as it is (tests/study/test_profiles.py)
    assert spec.baseline == "only_soitr"
    assert spec.measured_columns == ("params", "flops", "top1", "top5")
    assert spec.descriptive_columns == ("rfs", "multi_scale")
    assert spec.row("eab").paper == {"params": 36.0, "flops": 36.1, "top1": 51.9, "top5": 79.5}
    assert spec.row("l_block").cells == {"rfs": "5×5×5", "multi_scale": "-"}
    assert spec.title_of("label") == "Models" and spec.title_of("top1") == "Top1 (%)"


def _data() -> dict:
    return yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))


def _error(data, source="study.yaml") -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data, source=source)
    return str(info.value)


def test_unknown_top_level_key_lists_valid_keys():
    data = _data()
    data["seed"] = [0]
    msg = _error(data)
    assert msg.startswith("study.yaml: ")
    assert "unknown key 'seed'" in msg and "Valid keys: name, title, seeds, protocol" in msg


def test_unknown_row_key_names_the_row():
    data = _data()
    data["rows"][1]["overides"] = ["block=x"]
    msg = _error(data)
    assert "row 's_block'" in msg and "unknown key 'overides'" in msg and "Valid keys: id, label, overrides" in msg


@pytest.mark.parametrize("key", ["name", "title", "seeds", "protocol", "columns", "rows"])
def test_missing_required_key(key):
    data = _data()
    del data[key]
    assert f"missing key '{key}'" in _error(data)


def test_missing_row_label():
    data = _data()
    del data["rows"][2]["label"]
    msg = _error(data)
    assert "row 'l_block'" in msg and "missing key 'label'" in msg


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.update(seeds="0,1,2"), "seeds must be a non-empty list of integers"),
        (lambda d: d.update(seeds=[0, True]), "seeds must be non-negative integers, got True"),
        (lambda d: d.update(seeds=[0, 0]), "seeds has duplicates"),
        (lambda d: d.update(name="Table8"), "name must be a lowercase identifier"),
        (lambda d: d.update(overrides="model=x"), "overrides must be a list of strings"),
        (lambda d: d["protocol"].update(clips=0), "protocol.clips must be a positive integer, got 0"),
        (lambda d: d["protocol"].update(views=3), "unknown key 'views' in the protocol"),
        (lambda d: d["rows"][0]["cells"].update(multi_scale=True), "quote it"),
        (lambda d: d["rows"][0]["paper"].update(top1="49.3"), "paper.top1 must be a number, got '49.3'"),
        (lambda d: d["rows"][0]["paper"].update(top3=1.0), "paper names unknown measured column 'top3'"),
        (lambda d: d["rows"][0]["cells"].update(top1="x"), "cells names 'top1', which is not a descriptive column"),
        (lambda d: d["rows"][0]["cells"].pop("rfs"), "cells lacks the descriptive column(s) rfs"),
        (lambda d: d["column_titles"].update(top7="x"), "column_titles names unknown column 'top7'"),
        (lambda d: d.update(columns=["top1", "top1"]), "columns has duplicates: top1"),
        (lambda d: d.update(profiles={"smoke": "data=x"}), "profiles.smoke must be a list of strings"),
        (lambda d: d.update(rows=[]), "rows must be a non-empty list"),
    ],
)
def test_wrong_types_and_values_are_rejected(mutate, expected):
    data = _data()
    mutate(data)
    assert expected in _error(data)


def test_duplicate_row_id():
    data = _data()
    data["rows"].append(copy.deepcopy(data["rows"][0]))
    msg = _error(data)
    assert "row 'only_soitr'" in msg and "duplicate row id 'only_soitr'" in msg


def test_baseline_must_be_a_row_id():
    data = _data()
    data["baseline"] = "resnet"
    msg = _error(data)
    assert "baseline 'resnet' is not a row id" in msg and "only_soitr, s_block" in msg


@pytest.mark.parametrize("bad", ["_target_=os.system", "data.root=${oc.env:HOME}", "x=${env:HOME}"])
def test_code_and_environment_resolvers_are_rejected(bad):
    data = _data()
    data["rows"][3]["overrides"].append(bad)
    msg = _error(data)
    assert "row 'incep_block'" in msg and repr(bad) in msg and "data only" in msg


@pytest.mark.parametrize(
    "place",
    [
        lambda d: d.update({"_target_": "os.system"}),
        lambda d: d["rows"][0].update({"paper": {"_target_": "os.system"}}),
        lambda d: d["profiles"].update({"smoke": ["+model._target_=os.system"]}),
    ],
    ids=["top level", "nested mapping", "override text"],
)
def test_target_key_anywhere_is_rejected(place):
    data = _data()
    place(data)
    assert "names Python code" in _error(data) and "a study spec is data only" in _error(data)


def test_load_spec_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nrows: [\n")
    with pytest.raises(SpecError, match="broken.yaml: not valid YAML"):
        load_spec(path)
    with pytest.raises(SpecError, match="missing.yaml: cannot read"):
        load_spec(tmp_path / "missing.yaml")
    data = _data()
    data["rows"][0]["id"] = "Bad Id"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=r"broken.yaml: row 'Bad Id': id must be a lowercase identifier"):
        load_spec(path)


def test_spec_hash_ignores_key_order_and_location_but_not_content(tmp_path):
    data = _data()
    reordered = dict(reversed(list(data.items())))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(reordered, sort_keys=False, allow_unicode=True))
    assert spec_hash(load_spec(tmp_path / "a.yaml")) == spec_hash(load_spec(FIXTURE))
    data["seeds"] = [0, 1]
    assert spec_hash(parse_spec(data)) != spec_hash(load_spec(FIXTURE))


def test_spec_is_frozen():
    spec = load_spec(FIXTURE)
    with pytest.raises(AttributeError):
        spec.name = "other"


def _spec_with_rows(rows):
    return {
        "name": "en",
        "title": "t",
        "seeds": [0],
        "protocol": {"clips": 1, "crops": 1},
        "columns": ["top1"],
        "rows": rows,
    }


def test_ensemble_rows_name_earlier_trained_rows():
    rows = [
        {"id": "a", "label": "A", "overrides": ["model.num_segments=8"]},
        {"id": "b", "label": "B", "overrides": ["model.num_segments=16"]},
        {"id": "en", "label": "En", "ensemble": ["a", "b"]},
    ]
    spec = parse_spec(_spec_with_rows(rows))
    assert spec.rows[2].ensemble == ("a", "b") and spec.rows[0].ensemble == ()


@pytest.mark.parametrize(
    ("ensemble_row", "message"),
    [
        ({"id": "en", "label": "En", "ensemble": ["a", "zz"]}, "Valid: a, b"),
        ({"id": "en", "label": "En", "ensemble": ["a"]}, "at least two"),
        ({"id": "en", "label": "En", "ensemble": ["a", "b"], "overrides": ["x=1"]}, "no overrides"),
    ],
)
def test_bad_ensemble_rows_are_rejected(ensemble_row, message):
    rows = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, ensemble_row]
    with pytest.raises(SpecError, match=message):
        parse_spec(_spec_with_rows(rows))
