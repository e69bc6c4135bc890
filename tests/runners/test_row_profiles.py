"""A row's own refinement of a profile, and files a region strategy needs, checked when a study is planned."""

from __future__ import annotations

import pytest

from runners.plan import PlanError, build_plan
from study.spec import SpecError, parse_spec
from tests.runners.conftest import tiny_spec

BASE = {"id": "base", "label": "Base", "overrides": ["block=none"]}
DETECTOR = {
    "id": "detector",
    "label": "Faster RCNN",
    "overrides": ["regions=fasterrcnn", "model.region_options.weights=torchvision"],
    "profiles": {"smoke": ["model.region_options.weights=null"]},
}
EN = {"id": "en", "label": "En", "ensemble": ["base", "detector"]}


def test_a_rows_refinement_of_a_profile_applies_to_that_row_after_its_own_overrides(tmp_path):
    spec = parse_spec(tiny_spec([BASE, DETECTOR]))
    trials = {t.row.id: t for t in build_plan(spec, [], [], [0], tmp_path, profile_name="smoke")}
    assert trials["detector"].config["model"]["region_options"]["weights"] is None
    assert trials["base"].config["model"]["regions"] != "fasterrcnn"


def test_without_the_profile_the_detector_needs_its_coco_weights_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    spec = parse_spec(tiny_spec([BASE, DETECTOR]))
    with pytest.raises(PlanError, match=r"row 'detector': model: .*needs torchvision's COCO Faster R-CNN weights at "):
        build_plan(spec, [], [], [0], tmp_path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**DETECTOR, "profiles": {"smoke": "x=1"}}, "profiles.smoke must be a list of strings"),
        ({**DETECTOR, "profiles": {"smoke": ["model._target_=os.system"]}}, "data only"),
        ({**EN, "profiles": {"smoke": ["x=1"]}}, "no overrides or profiles"),
    ],
)
def test_bad_row_profiles_are_refused(row, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(tiny_spec([BASE, DETECTOR, row] if row["id"] == "en" else [BASE, row]))
