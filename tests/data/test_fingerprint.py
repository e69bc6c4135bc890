"""A dataset's fingerprint (part of every trial key) says which data it is: what its annotations say, the
classes and each video with its label, wherever their files lie and whatever else lies beside them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ean.data import DATASETS
from ean.data.identity import data_fingerprint

ON_DISK = [name for name in DATASETS.names() if not getattr(DATASETS.get(name), "GENERATED", False)]


def fingerprint(name: str, root: Path, **options) -> str:
    return data_fingerprint({"dataset": name, "root": str(root), **options})


def _edit_json(path: Path, change) -> None:
    entries = json.loads(path.read_text())
    change(entries)
    path.write_text(json.dumps(entries))


def _edit_line(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _swap_templates(entries):  # the first two training videos trade classes
    entries[0]["template"], entries[1]["template"] = entries[1]["template"], entries[0]["template"]


#: One training video relabelled, in each dataset's own annotation file (Something V2's under labels/).
RELABEL = {
    "something_v2": lambda root: _edit_json(root / "labels" / "train.json", _swap_templates),
    "something_v1": lambda root: _edit_line(
        root / "something-something-v1-train.csv", "11;Pushing something from left to right", "11;Moving something up"
    ),
    "kinetics400": lambda root: _edit_line(root / "train.csv", "abseiling,aaa", "zumba,aaa"),
    "diving48": lambda root: _edit_json(root / "Diving48_train.json", lambda e: e[0].update(label=5)),
    "list_file": lambda root: _edit_line(root / "train.txt", "frames/a 20 0", "frames/a 20 1"),
}


def test_every_dataset_on_disk_has_a_relabelling_here():
    assert sorted(RELABEL) == sorted(ON_DISK)


@pytest.mark.parametrize("name", ON_DISK)
def test_a_copy_elsewhere_with_other_files_beside_it_is_the_same_data(name, request, tmp_path):
    root = request.getfixturevalue(f"{name}_root")
    copy = shutil.copytree(root, tmp_path / "elsewhere" / "copy")
    (copy / "README.txt").write_text("downloaded on Monday\n")
    (copy / "labels_backup.json").write_text("[]")
    assert fingerprint(name, copy) == fingerprint(name, root)


@pytest.mark.parametrize("name", ON_DISK)
def test_a_relabelled_training_video_is_other_data(name, request, tmp_path):
    copy = shutil.copytree(request.getfixturevalue(f"{name}_root"), tmp_path / "copy")
    before = fingerprint(name, copy)
    RELABEL[name](copy)
    assert fingerprint(name, copy) != before


def test_the_same_annotations_written_otherwise_are_the_same_data(something_v2_root, tmp_path):
    copy = shutil.copytree(something_v2_root, tmp_path / "copy")
    train = copy / "labels" / "train.json"
    train.write_text(json.dumps(json.loads(train.read_text()), indent=2))
    assert fingerprint("something_v2", copy) == fingerprint("something_v2", something_v2_root)


def test_a_list_file_outside_the_root_is_read_for_the_fingerprint(list_file_root, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train.txt", "val.txt"):
        shutil.copy(list_file_root / name, lists / name)
    options = {"train_list": str(lists / "train.txt"), "val_list": str(lists / "val.txt")}
    assert fingerprint("list_file", list_file_root, **options) == fingerprint("list_file", list_file_root)
    _edit_line(lists / "train.txt", "videos/b.mp4 26 1", "videos/b.mp4 26 0")
    assert fingerprint("list_file", list_file_root, **options) != fingerprint("list_file", list_file_root)


def test_data_that_is_not_there_is_named_by_its_dataset_alone(tmp_path):
    assert fingerprint("something_v2", tmp_path / "absent") == fingerprint("something_v2", tmp_path / "gone")
    assert fingerprint("something_v2", tmp_path / "absent") != fingerprint("kinetics400", tmp_path / "absent")


def test_a_class_name_edited_in_diving48s_vocabulary_is_other_data(diving48_root, tmp_path):
    copy = shutil.copytree(diving48_root, tmp_path / "copy")
    before = fingerprint("diving48", copy)
    _edit_json(copy / "Diving48_vocab.json", lambda vocab: vocab[0].__setitem__(1, "9som"))
    assert fingerprint("diving48", copy) != before


def test_a_kinetics_clip_downloaded_later_is_other_data(kinetics400_root, tmp_path):
    """The clips a split trains on are those its CSV lists and the disk holds: one more is another training set."""
    copy = shutil.copytree(kinetics400_root, tmp_path / "copy")
    before = fingerprint("kinetics400", copy)
    shutil.copy(next((copy / "train" / "zumba").iterdir()), copy / "train" / "zumba" / "gone_000003_000013.mp4")
    assert fingerprint("kinetics400", copy) != before


def test_a_malformed_annotation_file_is_a_data_error_naming_the_split(something_v2_root, tmp_path):
    from ean.data import DataError

    copy = shutil.copytree(something_v2_root, tmp_path / "copy")
    train = copy / "labels" / "train.json"
    train.write_text(train.read_text()[:40])
    with pytest.raises(DataError, match=r"something_v2: the train annotations under .* cannot be read \(JSONDecode"):
        fingerprint("something_v2", copy)


def test_a_list_naming_videos_by_absolute_paths_is_the_same_data_under_any_root(list_file_root, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train.txt", "val.txt"):
        lines = (list_file_root / name).read_text().splitlines()
        (lists / name).write_text("\n".join(f"{list_file_root / line}" for line in lines) + "\n")
    options = {"train_list": str(lists / "train.txt"), "val_list": str(lists / "val.txt")}
    one, other = tmp_path / "one_root", tmp_path / "nested" / "other_root"
    one.mkdir(), other.mkdir(parents=True)
    assert fingerprint("list_file", one, **options) == fingerprint("list_file", other, **options)


def test_a_root_without_its_training_list_is_a_data_error_not_absent_data(something_v1_root, tmp_path):
    from ean.data import DataError

    copy = shutil.copytree(something_v1_root, tmp_path / "copy")
    (copy / "something-something-v1-train.csv").unlink()
    with pytest.raises(DataError, match=r"something_v1: the train annotations under .* cannot be read \(DataError"):
        fingerprint("something_v1", copy)


def test_a_list_files_trial_key_holds_what_the_lists_say_not_where_they_lie(list_file_root, tmp_path):
    from ean.trial import trial_key
    from tests.train.helpers import tiny_config

    config = tiny_config(str(list_file_root))
    config["data"] = {"dataset": "list_file", "root": str(list_file_root), "num_workers": 0}
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train.txt", "val.txt"):
        shutil.copy(list_file_root / name, lists / f"copy_{name}")
    moved = {**config, "data": {**config["data"], "train_list": str(lists / "copy_train.txt"),
                                "val_list": str(lists / "copy_val.txt")}}  # fmt: skip
    assert trial_key(moved) == trial_key(config)
    _edit_line(lists / "copy_train.txt", "videos/b.mp4 26 1", "videos/b.mp4 26 0")
    assert trial_key(moved) != trial_key(config)


def test_data_that_is_not_there_is_told_apart_by_the_lists_it_would_read(tmp_path):
    """Planned where the data is not (an estimate): two list_file splits of one root are two datasets."""
    absent = tmp_path / "absent"
    split1 = {"train_list": "trainlist01.txt", "val_list": "testlist01.txt"}
    split2 = {"train_list": "trainlist02.txt", "val_list": "testlist02.txt"}
    assert fingerprint("list_file", absent, **split1) != fingerprint("list_file", absent, **split2)
    assert fingerprint("list_file", absent, **split1) == fingerprint("list_file", tmp_path / "gone", **split1)
