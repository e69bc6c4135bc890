"""The paper's study specs and the Hydra config groups: every spec plans; group files match the registries."""

from pathlib import Path

import pytest

from ean.data import DATASETS
from ean.models import BLOCKS, FUSIONS, REGIONS
from ean.trial import protocol_key, trial_key
from runners.compose import group_options
from runners.plan import build_plan, evaluation_key
from runners.validate import devices_of, train_config
from study.locations import CONF_DIR
from study.profiles import profile_overrides
from study.spec import load_spec
from tests.paper_specs import paper_rows

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("table*.yaml"))


@pytest.mark.parametrize(
    ("group", "registry"), [("block", BLOCKS), ("fusion", FUSIONS), ("regions", REGIONS), ("data", DATASETS)]
)
def test_config_group_files_and_registry_names_match(group, registry):
    assert set(group_options(group)) == set(registry.names())


def test_the_papers_studies_are_all_there():
    assert [p.stem for p in STUDIES] == [
        "table1",
        "table10",
        "table2",
        "table3",
        "table4",
        "table5",
        "table6",
        "table7",
        "table8",
        "table9",
    ]


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_study_plans_with_its_smoke_profile(path, tmp_path):
    spec = load_spec(path)
    trials = build_plan(spec, profile_overrides(spec, "smoke"), [], [0], tmp_path, profile_name="smoke")
    trained = [r for r in spec.rows if r.trains or r.evaluate]  # not the ensembles, not the published references
    assert [(t.column, t.row.id) for t in trials] == [(c, r.id) for c in spec.columns_of_data for r in trained]
    assert len({t.key for t in trials}) == len(trials), "rows (and dataset columns) must differ"
    for trial in trials:
        assert trial.config["data"]["dataset"] == "synthetic"
        if trial.evaluates:  # an evaluation row: the training it tests, under the row's protocol
            assert trial.key == evaluation_key(trial.evaluates, protocol_key(trial.row.protocol.tag))
            continue
        assert trial.key == trial_key(train_config(trial.config), devices_of(trial.config), trial.data_fingerprint)


def test_the_readme_example_spec_plans_with_the_smoke_profile(tmp_path):
    """The spec the README shows under "Running studies", copied into a file, is a valid study."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running studies", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my_table8.yaml"
    path.write_text(example, encoding="utf-8")
    spec = load_spec(path)
    trials = build_plan(spec, profile_overrides(spec, "smoke"), [], [0], tmp_path, profile_name="smoke")
    assert [t.row.id for t in trials] == ["only_soitr", "s_block", "eab"]
    assert {r.id for r in spec.rows} == {"only_soitr", "s_block", "eab", "en", "tsm"}


NO_SOI = {"regions": "none"}
NO_EAB = {"block": "none"}


@pytest.mark.parametrize(
    ("study", "row", "paper_model"),
    [  # the paper's description of the row, as model-config deltas over the EAN 8F RGB
        ("table8", "s_block", {"block": "s_block"}),
        ("table9", "static", {"fusion": "static"}),
        ("table10", "factorized", {"block_options": {"factorization": "1+1+1"}}),
        ("table6", "eab12_soi345", {"block_stages": [1, 2], "region_stages": [3, 4, 5]}),
        ("table5", "resnet", {**NO_EAB, **NO_SOI}),
        ("table1", "ean16f_rgb_lmc", {"modality": "rgb_lmc", "num_segments": 16}),
        ("table3", "tsm8f", {**NO_EAB, **NO_SOI, "temporal_conv": "shift", "motion_excitation": False}),
        ("table4", "ean16f_rgb", {"num_segments": 16}),
    ],
)
def test_study_rows_build_the_papers_models(study, row, paper_model, tmp_path):
    """A row composed at full size (with the data root pointed at synthetic data) is the paper's model, and is
    the model the paper-number tests count (``tests.paper_specs``, composed with the spec's own settings)."""
    from ean.models import resolve_model_config

    spec = load_spec(CONF_DIR.parents[0] / f"{study}.yaml")
    spec = spec.on_dataset(spec.columns_of_data[0])  # Table 1 compares datasets: its models are those of each
    (trial,) = [
        t for t in build_plan(spec, ["data=synthetic", "model.pretrained=null"], [], [0], tmp_path) if t.row.id == row
    ]
    composed = resolve_model_config(trial.config["model"])
    expected = resolve_model_config({**paper_model, "num_classes": composed["num_classes"]})
    for key in (
        "block",
        "fusion",
        "regions",
        "block_stages",
        "region_stages",
        "modality",
        "num_segments",
        "temporal_conv",
        "motion_excitation",
    ):
        assert composed[key] == expected[key], key
    assert composed["block_options"].items() >= expected["block_options"].items()
    (counted,) = [r for r in paper_rows() if r.name == f"{study}/{row}"]
    assert resolve_model_config({**counted.model, "num_classes": composed["num_classes"]}) == composed


GOLDEN_KEYS = Path(__file__).with_name("golden_smoke_keys.json")


def _smoke_keys(base: Path) -> dict[str, str]:
    keys = {}
    for path in STUDIES:
        spec = load_spec(path)
        for trial in build_plan(spec, profile_overrides(spec, "smoke"), [], [0, 1], base, profile_name="smoke"):
            keys[trial.name] = trial.key
    return keys


def test_trial_keys_of_every_papers_study_are_stable(tmp_path):
    """A refactor leaves every key as it was; a change of what is computed bumps ``ean.__version__``, or puts
    the change in the keys of the trials it touches alone (``ean.trial.MULTI_VIEW_RULE``), and rewrites the file
    (``EAN_WRITE_GOLDEN_KEYS=1 python -m pytest tests/runners/test_studies.py``)."""
    import json
    import os

    import ean

    keys = {"code_version": ean.__version__, "keys": _smoke_keys(tmp_path)}
    if os.environ.get("EAN_WRITE_GOLDEN_KEYS"):
        GOLDEN_KEYS.write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN_KEYS.read_text())
    assert keys["keys"] == golden["keys"], "trial keys changed: bump ean.__version__ if what is computed changed"
    assert keys["code_version"] == golden["code_version"]
