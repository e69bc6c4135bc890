"""Trial keys name what is computed: the network as built, the recipe, the data's identity, the protocol, the
seed and the code version; never where the project or the data lie, nor how many workers carry the batch."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from runners.plan import PlanError, build_plan
from runners.run import main
from study.profiles import profile_overrides
from study.spec import load_spec
from tests.layouts import something_v1_layout

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def keys(study: str, cli: list[str], base: Path, profile: str | None = None) -> dict[str, str]:
    spec = load_spec(STUDIES / f"{study}.yaml")
    overrides = profile_overrides(spec, profile) if profile else []
    return {t.row.id: t.key for t in build_plan(spec, overrides, cli, [0], base)}


def test_keys_equal_across_two_clones_at_different_paths(tmp_path, imagenet_v1):
    """Each clone has its data under its own folder (relative data.root): same data, same keys."""
    clones = [tmp_path / "a" / "clone", tmp_path / "elsewhere" / "b"]
    for clone in clones:
        something_v1_layout(clone / "data" / "something_v1")
    found = [keys("table8", [], clone) for clone in clones]
    assert found[0] == found[1] and len(set(found[0].values())) == 5
    smoke = [keys("table8", [], clone, "smoke") for clone in clones]
    assert smoke[0] == smoke[1]


def test_keys_follow_the_annotations_not_their_location(tmp_path, imagenet_v1):
    first = something_v1_layout(tmp_path / "one")
    moved = shutil.copytree(first, tmp_path / "moved")
    assert keys("table8", [f"data.root={first}"], tmp_path) == keys("table8", [f"data.root={moved}"], tmp_path)
    (moved / "validation.csv").write_text("3;class 5\n")
    changed = keys("table8", [f"data.root={moved}"], tmp_path)
    assert set(changed.values()).isdisjoint(keys("table8", [f"data.root={first}"], tmp_path).values())


@pytest.mark.parametrize("profile", [None, "smoke"])
def test_incep_block_of_table8_is_identity_of_table9(tmp_path, sth_v1, imagenet_v1, profile):
    cli = [f"data.root={sth_v1 if profile is None else tmp_path / 'synthetic'}"]  # smoke: generated data
    table8, table9 = keys("table8", cli, tmp_path, profile), keys("table9", cli, tmp_path, profile)
    assert table8["incep_block"] == table9["identity"]
    assert table8["eab"] == table9["dynamic"]
    assert len({table9["identity"], table9["shuffle"], table9["static"], table9["dynamic"]}) == 4


def test_an_option_the_block_never_reads_does_not_change_the_key(tmp_path, sth_v1, imagenet_v1):
    cli = [f"data.root={sth_v1}"]
    plain = keys("table8", cli, tmp_path)
    static = keys("table8", [*cli, "model.fusion=static"], tmp_path)
    for row in ("only_soitr", "s_block", "l_block", "incep_block"):  # none of these reads the fusion
        assert static[row] == plain[row], row
    assert static["eab"] != plain["eab"]  # the EAB does
    # block/eab.yaml writes the EAB's defaults out; left to the block's own defaults, they are the same network
    assert keys("table9", [*cli, "model.block_options={}"], tmp_path) == keys("table9", cli, tmp_path)


def test_workers_carry_the_global_batch_without_changing_the_key(tmp_path, sth_v1, imagenet_v1):
    cli = [f"data.root={sth_v1}"]
    one = keys("table8", [*cli, "resources.workers=1"], tmp_path)
    eight = keys("table8", [*cli, "resources.workers=8"], tmp_path)
    assert one == eight
    other_batch = keys("table8", [*cli, "trainer.batch_size=32"], tmp_path)
    assert set(other_batch.values()).isdisjoint(one.values())
    other_device_batch = keys("table8", [*cli, "trainer.per_device_batch=4"], tmp_path)
    assert set(other_device_batch.values()).isdisjoint(one.values())


def test_a_trial_asking_for_a_gpu_is_keyed_by_the_precision_it_computes_in_there(tmp_path, sth_v1, imagenet_v1):
    """``trainer.amp: auto`` is bf16 on the GPU a trial's resources give it, full precision on a CPU: the
    driver, which may have no GPU, keys each trial by where it will run."""
    cli = [f"data.root={sth_v1}"]
    on_cpu = keys("table8", cli, tmp_path)
    assert keys("table8", [*cli, "trainer.amp=none"], tmp_path) == on_cpu
    on_gpu = keys("table8", [*cli, "resources=gpu"], tmp_path)
    assert set(on_gpu.values()).isdisjoint(on_cpu.values())
    assert keys("table8", [*cli, "resources=gpu", "trainer.amp=bf16"], tmp_path) == on_gpu
    assert keys("table8", [*cli, "resources=gpu", "trainer.amp=none"], tmp_path) == on_cpu


def test_a_trial_runs_on_the_device_its_resources_give_it(tmp_path, sth_v1, imagenet_v1):
    from runners.validate import train_config

    spec = load_spec(STUDIES / "table8.yaml")

    def devices(resources: str) -> set[str]:
        trials = build_plan(spec, [], [f"data.root={sth_v1}", f"resources={resources}"], [0], tmp_path)
        return {train_config(t.config)["trainer"]["device"] for t in trials}

    assert devices("default") == {"cpu"} and devices("gpu") == {"cuda"}
    with pytest.raises(PlanError, match=r"trainer.device = 'cuda' but resources.gpus = 0"):
        build_plan(spec, [], [f"data.root={sth_v1}", "trainer.device=cuda"], [0], tmp_path)


def test_loader_workers_threads_and_timeouts_do_not_change_the_key(tmp_path, sth_v1, imagenet_v1):
    cli = [f"data.root={sth_v1}"]
    tuned = ["data.num_workers=12", "data.decode_timeout_s=5", "+data.decode_threads=4", "trainer.num_threads=3"]
    assert keys("table8", [*cli, *tuned], tmp_path) == keys("table8", cli, tmp_path)


def test_a_global_batch_the_workers_cannot_split_stops_the_plan(tmp_path, sth_v1, imagenet_v1):
    spec = load_spec(STUDIES / "table8.yaml")
    with pytest.raises(
        PlanError, match=r"batch_size = 64 .* cannot be carried by 3 device\(s\) of 8 clips.*1, 2, 4, 8"
    ):
        build_plan(spec, [], [f"data.root={sth_v1}", "resources.workers=3"], [0], tmp_path)


def test_duplicate_seeds_are_refused(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["table8", "--profile", "smoke", "--seeds", "0,0", "--dry-run", "--mlflow-uri", store]) == 2
    assert "seeds [0, 0] name a seed twice" in capsys.readouterr().err


def test_a_174_class_model_on_a_3_class_dataset_stops_at_planning(tmp_path, imagenet_v1, capsys):
    three = something_v1_layout(tmp_path / "three", num_classes=3)
    store = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["table8", f"data.root={three}", "--mlflow-uri", store, "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "model.num_classes = 174 but dataset 'something_v1'" in err and "has 3 classes" in err
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "runs").exists()


def test_the_specs_protocol_must_be_the_data_configs(tmp_path, sth_v1, imagenet_v1, capsys):
    store = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["table8", f"data.root={sth_v1}", "data.test_clips=2", "--dry-run", "--mlflow-uri", store]) == 2
    assert "the spec's protocol 1x1 (clips x crops) differs from the data config's 2x1" in capsys.readouterr().err


def test_two_rows_of_one_study_that_build_the_same_network_are_refused(tmp_path):
    from study.spec import parse_spec
    from tests.runners.conftest import tiny_spec

    rows = [
        {"id": "base", "label": "Base", "overrides": ["block=none"]},
        {"id": "incep", "label": "Incep", "overrides": ["block=incep_block"]},
        {"id": "identity", "label": "M = I", "overrides": ["block=eab", "model.fusion=identity"]},
    ]
    spec = parse_spec(tiny_spec(rows), source="tiny.yaml")
    with pytest.raises(PlanError, match=r"rows 'incep', 'identity': build the same network"):
        build_plan(spec, [], [], [0, 1], tmp_path)


def test_a_malformed_training_list_stops_the_plan_naming_it(tmp_path, sth_v1, imagenet_v1):
    (sth_v1 / "train.csv").write_text("no separator here\n")
    with pytest.raises(PlanError, match=r"something_v1: the train annotations under .* cannot be read"):
        keys("table8", [f"data.root={sth_v1}"], tmp_path)


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("data.num_workers=-1", r"data.num_workers = -1; must be an integer >= 0"),
        ("+data.loader_timeout_s=-5", r"data.loader_timeout_s = -5; must be a number >= 0"),
    ],
)
def test_a_loader_value_out_of_range_stops_the_plan(override, problem, tmp_path, sth_v1, imagenet_v1):
    """Not first met inside a trial (failed there, and retried): planning names it."""
    with pytest.raises(PlanError, match=problem):
        build_plan(load_spec(STUDIES / "table8.yaml"), [], [f"data.root={sth_v1}", override], [0], tmp_path)


def test_faster_rcnn_files_given_relative_to_the_study_are_made_absolute(tmp_path, monkeypatch):
    """Ray runs each trial in a folder of its own: a relative weights file or box cache would name another
    file there (or none) than the one the plan checked and keyed."""
    spec = load_spec(STUDIES / "table7.yaml")
    spec = dataclasses.replace(spec, rows=tuple(r for r in spec.rows if r.id == "fasterrcnn"))
    torch.save({}, tmp_path / "w.pth")
    small = ["data=synthetic", "model.pretrained=null", "model.backbone=resnet18"]
    cli = ["model.region_options.weights=w.pth", "model.region_options.cache_dir=boxes"]
    (trial,) = build_plan(spec, small, cli, [0], tmp_path)
    options = trial.config["model"]["region_options"]
    assert (options["weights"], options["cache_dir"]) == (str(tmp_path / "w.pth"), str(tmp_path / "boxes"))
    monkeypatch.setenv("HOME", str(tmp_path))  # and ~ is the user's home, not a folder named ~
    home = ["model.region_options.weights='~/w.pth'", "model.region_options.cache_dir='~/boxes'"]
    (trial,) = build_plan(spec, small, home, [0], tmp_path / "elsewhere")
    options = trial.config["model"]["region_options"]
    assert (options["weights"], options["cache_dir"]) == (str(tmp_path / "w.pth"), str(tmp_path / "boxes"))


def test_only_the_trials_tested_on_several_views_are_keyed_by_how_views_are_placed_and_combined(tmp_path):
    """The authors' rule (clip c of k at c / k of each segment, logits averaged) replaced 0.4.3's (clips spread
    evenly, probabilities averaged) in the keys of the multi-view trials alone: the single-view ones keep theirs."""
    from ean.trial import MULTI_VIEW_RULE, protocol_key, semantic_config

    config = {"data": {"dataset": "synthetic", "root": str(tmp_path)}, "model": {"pretrained": None}}
    one = semantic_config({**config, "data": {**config["data"], "test_clips": 1}})
    two = semantic_config({**config, "data": {**config["data"], "test_clips": 2}})
    assert "views" not in one["data"] and two["data"]["views"] == MULTI_VIEW_RULE
    assert (
        protocol_key("1x1") == "1x1"
        and MULTI_VIEW_RULE in protocol_key("2x1")
        and MULTI_VIEW_RULE in protocol_key("1x3")
    )


def test_a_trainer_option_added_later_keys_a_trial_only_away_from_its_default(monkeypatch):
    """A new trainer key listed in ``TRAINER_OMITTED_AT_DEFAULT`` leaves every key made before it as it was."""
    from ean import trial
    from ean.train import config as trainer_config

    config = {"model": {"backbone": "resnet18"}, "data": {"dataset": "synthetic", "root": "x"}, "seed": 0}
    before = trial.trial_key(config, fingerprint="sha256:0")
    monkeypatch.setitem(trainer_config.TRAINER_DEFAULTS, "ema_decay", 0.0)
    assert trial.trial_key(config, fingerprint="sha256:0") != before  # not listed: in every key
    monkeypatch.setattr(trial, "TRAINER_OMITTED_AT_DEFAULT", ("ema_decay",))
    assert trial.trial_key(config, fingerprint="sha256:0") == before
    changed = {**config, "trainer": {"ema_decay": 0.999}}
    assert trial.trial_key(changed, fingerprint="sha256:0") != before
