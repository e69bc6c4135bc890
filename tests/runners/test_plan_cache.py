"""The plan cache: a cached plan is the plan (keys, configs, rows, columns, evaluations), it stands only while
everything planning read is as it was, and a dry run served from it imports no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ean.files_read import recording
from runners.conf_dirs import search_path
from runners.plan import PlanError, build_plan
from runners.plan_cache import PlanCache, tree_signature
from study.find import find_spec
from study.profiles import profile_overrides
from study.spec import load_spec
from tests.runners.conftest import REPO


def plan(spec, profile: list[str], cli: list[str], base: Path, folder: Path, profile_name=None):
    """The plan of an invocation as ``runners.run`` gets it: (trials, whether they came from the cache)."""
    cache = PlanCache(spec, profile, cli, [0, 1], base, True, profile_name, search_path(), folder)
    trials = cache.load()
    if trials is not None:
        return trials, True
    with recording() as read:
        trials = build_plan(spec, profile, cli, [0, 1], base, profile_name=profile_name)
    cache.save(trials, read)
    return trials, False


def described(trials) -> list:
    return [
        (t.name, t.key, t.config, t.recipe, t.data_fingerprint, t.row, t.column, t.evaluates, t.state, t.key_inputs)
        for t in trials
    ]


@pytest.mark.parametrize("study", ["table1", "table4", "table8"])
def test_a_cached_plan_is_the_plan(study, tmp_path):
    """Dataset columns (Table 1), evaluation rows (Table 4), a plain study (Table 8): the same trials."""
    spec = load_spec(find_spec(study))
    profile = profile_overrides(spec, "smoke")
    first, cached = plan(spec, profile, [], tmp_path, tmp_path / "cache", "smoke")
    again, hit = plan(spec, profile, [], tmp_path, tmp_path / "cache", "smoke")
    assert (cached, hit) == (False, True)
    assert described(again) == described(first)
    assert all(t.counts is None for t in again)
    assert all((t.key_inputs is None) == bool(t.evaluates) for t in again)  # what each training's key was made of


def test_counts_saved_with_the_plan_come_back(tmp_path):
    spec = load_spec(find_spec("table8"))
    profile = profile_overrides(spec, "smoke")
    cache = PlanCache(spec, profile, [], [0], tmp_path, True, "smoke", search_path(), tmp_path / "cache")
    with recording() as read:
        trials = build_plan(spec, profile, [], [0], tmp_path, profile_name="smoke")
    cache.save(trials, read)
    from runners.trials import ModelCounts

    trials[0].counts = ModelCounts(params=7, macs=9)
    cache.save(trials)
    again = PlanCache(spec, profile, [], [0], tmp_path, True, "smoke", search_path(), tmp_path / "cache").load()
    assert again[0].counts == ModelCounts(7, 9) and again[1].counts is None


def test_an_edited_annotation_file_plans_again_with_the_new_trial_keys(tmp_path, sth_v1, imagenet_v1):
    spec = load_spec(find_spec("table8"))
    cli = [f"data.root={sth_v1}"]
    first, _ = plan(spec, [], cli, tmp_path, tmp_path / "cache")
    assert plan(spec, [], cli, tmp_path, tmp_path / "cache")[1]
    with (sth_v1 / "train.csv").open("a") as f:
        f.write("3;class 5\n")
    again, hit = plan(spec, [], cli, tmp_path, tmp_path / "cache")
    assert not hit
    assert {t.key for t in again}.isdisjoint({t.key for t in first})
    assert [t.key for t in again] == [t.key for t in build_plan(spec, [], cli, [0, 1], tmp_path)]


def test_a_plan_from_annotations_this_process_read_before_still_records_them(tmp_path, sth_v1, imagenet_v1):
    """The fingerprint and class count are memoised in the process; a plan that gets them from the memo must
    still record the annotation files, or its cached entry would outlive an edit of them."""
    spec = load_spec(find_spec("table8"))
    cli = [f"data.root={sth_v1}"]
    plan(spec, [], cli, tmp_path, tmp_path / "first_cache")
    plan(spec, [], cli, tmp_path, tmp_path / "cache")  # the annotations' digests come from the memo
    with (sth_v1 / "train.csv").open("a") as f:
        f.write("3;class 5\n")
    assert not plan(spec, [], cli, tmp_path, tmp_path / "cache")[1]


def test_a_weights_file_that_went_away_plans_again_and_refuses(tmp_path, sth_v1, imagenet_v1):
    spec = load_spec(find_spec("table8"))
    cli = [f"data.root={sth_v1}"]
    plan(spec, [], cli, tmp_path, tmp_path / "cache")
    imagenet_v1.unlink()
    with pytest.raises(PlanError, match="resnet50-0676ba61.pth"):
        plan(spec, [], cli, tmp_path, tmp_path / "cache")


def test_a_data_root_that_went_away_plans_again_and_refuses(tmp_path, sth_v1, imagenet_v1):
    spec = load_spec(find_spec("table8"))
    cli = [f"data.root={sth_v1}"]
    plan(spec, [], cli, tmp_path, tmp_path / "cache")
    sth_v1.rename(tmp_path / "moved")
    with pytest.raises(PlanError, match="does not exist"):
        plan(spec, [], cli, tmp_path, tmp_path / "cache")


def test_an_edited_list_file_in_a_subfolder_plans_again_and_refuses_the_wrong_class_count(tmp_path, imagenet_v1):
    """The class count is read from list files the config names relative to the root, in a subfolder."""
    root = tmp_path / "ucf"
    (root / "lists").mkdir(parents=True)
    (root / "lists" / "train.txt").write_text("a 8 0\nb 8 1\n")
    (root / "lists" / "val.txt").write_text("c 8 0\nd 8 1\n")
    spec = load_spec(find_spec("table8"))
    cli = ["data=list_file", f"data.root={root}", "data.train_list=lists/train.txt", "data.val_list=lists/val.txt",
           "model.num_classes=2"]  # fmt: skip
    plan(spec, [], cli, tmp_path, tmp_path / "cache")
    assert plan(spec, [], cli, tmp_path, tmp_path / "cache")[1]
    with (root / "lists" / "val.txt").open("a") as f:
        f.write("e 8 2\n")
    with pytest.raises(PlanError, match="has 3 classes"):
        plan(spec, [], cli, tmp_path, tmp_path / "cache")


def test_a_file_edited_while_the_study_is_planned_leaves_no_plan_that_hits(tmp_path, sth_v1, imagenet_v1):
    """Each file's state is taken before it is read: an edit after that (while other rows compose) is a miss."""
    spec = load_spec(find_spec("table8"))
    cli = [f"data.root={sth_v1}"]
    cache = PlanCache(spec, [], cli, [0], tmp_path, True, None, search_path(), tmp_path / "cache")
    with recording() as read:
        trials = build_plan(spec, [], cli, [0], tmp_path)
    with (sth_v1 / "train.csv").open("a") as f:
        f.write("3;class 5\n")
    cache.save(trials, read)
    assert PlanCache(spec, [], cli, [0], tmp_path, True, None, search_path(), tmp_path / "cache").load() is None


def test_every_input_of_planning_is_in_the_key(tmp_path, monkeypatch):
    spec = load_spec(find_spec("table8"))
    profile = profile_overrides(spec, "smoke")

    def key(**changes):
        args = {
            "spec": spec, "profile": profile, "cli_overrides": [], "seeds": [0], "base": tmp_path,
            "require_files": True, "profile_name": "smoke", "conf_dirs": search_path(),
        }  # fmt: skip
        return json.dumps(PlanCache(**{**args, **changes}).key, sort_keys=True)

    conf = tmp_path / "conf" / "trainer"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text("epochs: 1\n")
    base = key()
    others = [
        key(profile=[]),
        key(cli_overrides=["trainer.lr=0.1"]),
        key(seeds=[1]),
        key(base=tmp_path / "elsewhere"),
        key(require_files=False),
        key(profile_name=None),
        key(spec=load_spec(find_spec("table9"))),
        key(conf_dirs=[*search_path(), tmp_path / "conf"]),
    ]
    assert len({base, *others}) == len(others) + 1
    with_conf = key(conf_dirs=[*search_path(), tmp_path / "conf"])
    (conf / "mine.yaml").write_text("epochs: 2\n")
    assert key(conf_dirs=[*search_path(), tmp_path / "conf"]) != with_conf
    for variable in ("TORCH_HOME", "HOME"):  # where the hub cache and ~ are
        monkeypatch.setenv(variable, str(tmp_path / variable))
        assert key() != base
        monkeypatch.undo()


def test_a_loaded_plan_is_the_callers_to_change(tmp_path):
    spec = load_spec(find_spec("table8"))
    profile = profile_overrides(spec, "smoke")
    plan(spec, profile, [], tmp_path, tmp_path / "cache", "smoke")
    cache = PlanCache(spec, profile, [], [0, 1], tmp_path, True, "smoke", search_path(), tmp_path / "cache")
    first = cache.load()
    first[0].config["trainer"]["lr"] = 123.0
    assert cache.load()[0].config["trainer"]["lr"] != 123.0


def test_the_code_signature_sees_an_edited_an_added_and_a_removed_file(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = tree_signature([tmp_path], (".py",))
    (tmp_path / "a.py").write_text("x = 22\n")
    edited = tree_signature([tmp_path], (".py",))
    (tmp_path / "b.py").write_text("")
    added = tree_signature([tmp_path], (".py",))
    (tmp_path / "a.py").unlink()
    removed = tree_signature([tmp_path], (".py",))
    assert len({before, edited, added, removed}) == 4
    (tmp_path / "notes.txt").write_text("not code")
    assert tree_signature([tmp_path], (".py",)) == removed


def test_a_dry_run_from_the_plan_cache_imports_no_torch_and_prints_the_same_plan(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "EAN_CACHE_DIR": str(tmp_path / "cache")}
    script = (  # no store yet: nothing to read in MLflow
        "import sys, runners.run as r; code = r.main(sys.argv[1:]); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr); "
        "print('HEAVY', *sorted({m.split('.')[0] for m in sys.modules} & {'hydra', 'mlflow', 'ray'}), "
        "file=sys.stderr); "
        "sys.exit(code)"
    )
    args = ["table8", "--profile", "smoke", "--dry-run", "--mlflow-uri", f"sqlite:///{tmp_path / 'm.db'}"]

    def dry_run():
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr

    first, second, third = dry_run(), dry_run(), dry_run()
    assert "TORCH" in first[1].split() and "NO-TORCH" in second[1].split() and "NO-TORCH" in third[1].split()
    assert "HEAVY\n" in second[1] and "HEAVY\n" in third[1]  # neither Hydra nor MLflow nor Ray imported
    assert first[0] == second[0] == third[0] and "eab" in first[0] and "G" in first[0]  # Params and FLOPs too


def test_a_data_root_link_pointed_elsewhere_plans_again(tmp_path, sth_v1, imagenet_v1):
    """``data.root=cur`` where ``cur`` is a link: pointed at another dataset (other annotations), the plan is made
    again, with that dataset's trial keys, not served with the first target's."""
    from tests.layouts import something_v1_layout

    other = something_v1_layout(tmp_path / "other")
    (other / "train.csv").write_text("2;class 1\n")
    link = tmp_path / "cur"
    link.symlink_to(sth_v1, target_is_directory=True)
    spec = load_spec(find_spec("table8"))
    cli = ["data.root=cur"]
    first, _ = plan(spec, [], cli, tmp_path, tmp_path / "cache")
    assert plan(spec, [], cli, tmp_path, tmp_path / "cache")[1]
    link.unlink()
    link.symlink_to(other, target_is_directory=True)
    again, hit = plan(spec, [], cli, tmp_path, tmp_path / "cache")
    assert not hit and {t.key for t in again}.isdisjoint({t.key for t in first})
    assert all(t.config["data"]["root"] == str(link) for t in again)  # the link, as given, made absolute


def test_a_file_put_in_place_with_the_same_size_and_mtime_plans_again(tmp_path, sth_v1, imagenet_v1):
    """An annotation file replaced by another of the same size, its mtime set back (``cp -p``, ``touch -r``):
    its change time tells, the plan is made again with the new trial keys."""
    spec = load_spec(find_spec("table8"))
    cli = [f"data.root={sth_v1}"]
    first, _ = plan(spec, [], cli, tmp_path, tmp_path / "cache")
    train = sth_v1 / "train.csv"
    stat = train.stat()
    text = train.read_text()
    train.write_text(text.replace("1;", "2;", 1))
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert train.stat().st_size == stat.st_size and train.stat().st_mtime_ns == stat.st_mtime_ns
    again, hit = plan(spec, [], cli, tmp_path, tmp_path / "cache")
    assert not hit and {t.key for t in again}.isdisjoint({t.key for t in first})
