"""Every dataset format parsed from a fixture in its official layout, then read through decord / JPEG.

Fixture frames carry their own index (see media.py), so decoded clips prove which frames were sampled.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ean.data import DATASETS, DataError, build_dataset
from ean.trial import data_keys
from tests.data.conftest import DIVING_TRAIN, DIVING_VAL, SOMETHING_CLASSES, SOMETHING_TRAIN
from tests.data.media import decode_levels

SMALL = {"num_segments": 4, "resize": [48, 64], "crop_size": 32, "decode_timeout_s": 0}


#: Datasets whose files a fixture ``<name>_root`` writes in the official layout, frames carrying their index.
ON_DISK = [name for name in DATASETS.names() if not getattr(DATASETS.get(name), "GENERATED", False)]
#: Options a fixture's layout needs beyond the defaults.
EXTRA = {"list_file": {"image_tmpl": "img_{:05d}.jpg"}}
CONF_DATA = Path(__file__).resolve().parents[2] / "studies" / "conf" / "data"


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_has_a_config_file_whose_keys_it_takes(name):
    """``studies/conf/data/<name>.yaml`` exists and every key it sets is one the dataset takes."""
    data = yaml.safe_load((CONF_DATA / f"{name}.yaml").read_text())["data"]
    assert data["dataset"] == name
    assert set(data) <= {*data_keys(name)}, sorted(set(data) - set(data_keys(name)))


def build(name, root, split, **extra):
    return build_dataset({"dataset": name, "root": str(root), **SMALL, **extra}, split)


def test_something_v2(something_v2_root):
    train = build("something_v2", something_v2_root, "train")
    assert train.class_names == SOMETHING_CLASSES and train.num_classes == 4
    assert train.labels == [label for _, label, _ in SOMETHING_TRAIN]
    assert train.records[0].path == os.path.join(something_v2_root, "20bn-something-something-v2", "11.webm")
    assert train.flip_labels.pairs == {0: 1, 1: 0}
    assert len(build("something_v2", something_v2_root, "val")) == 2


def test_something_v1(something_v1_root):
    train = build("something_v1", something_v1_root, "train")
    assert train.class_names == SOMETHING_CLASSES
    assert train.labels == [label for _, label, _ in SOMETHING_TRAIN]
    assert {r.media for r in train.records} == {"frames"}
    assert train.records[1].path.endswith(os.path.join("20bn-something-something-v1", "12"))


def test_kinetics400_drops_clips_missing_on_disk(kinetics400_root):
    with pytest.warns(UserWarning, match="1 of 4 listed clips are not on disk"):
        train = build("kinetics400", kinetics400_root, "train")
    assert train.class_names == ["abseiling", "juggling balls", "zumba"]
    assert train.labels == [0, 2, 1]
    assert os.path.basename(train.records[0].path) == "aaa_000010_000020.mp4"
    assert [os.path.basename(r.path) for r in build("kinetics400", kinetics400_root, "val").records] == [
        "ddd_000030_000040.mp4",
        "eee_000001_000011.mp4",
    ]


def test_diving48(diving48_root):
    train = build("diving48", diving48_root, "train")
    assert train.num_classes == 48 and train.class_names[3] == "Back 3som NoTwis PIKE"
    assert train.labels == [label for _, label, _ in DIVING_TRAIN]
    val = build("diving48", diving48_root, "val")
    assert val.labels == [label for _, label, _ in DIVING_VAL]


def test_list_file_mixes_frames_and_videos(list_file_root):
    train = build("list_file", list_file_root, "train", class_names="classes.txt", image_tmpl="img_{:05d}.jpg")
    assert train.class_names == ["class zero", "class one"]
    assert [(r.media, r.label) for r in train.records] == [("frames", 0), ("video", 1)]
    for i in range(2):
        clip, label, index = train[i]
        assert clip.shape == (4, 1, 3, 32, 32) and index == i


@pytest.mark.filterwarnings("ignore:kinetics400")
@pytest.mark.parametrize("name", ON_DISK)
def test_test_clips_hold_exactly_the_sampled_frames(name, request):
    root, extra = request.getfixturevalue(f"{name}_root"), EXTRA.get(name, {})
    val = build(name, root, "val", test_clips=2, test_crops=3, frames_per_segment=2, **extra)
    clip, label, index = val[0]
    assert clip.shape == (6, 4, 2, 3, 32, 32) and clip.dtype == torch.uint8
    assert (label, index) == (val.records[0].label, 0)
    num_frames = len(val.media.reader(val.records[0].media).open(val.records[0].path))
    expected = val.sampler.test(num_frames)  # (2 clips, T, L)
    levels = decode_levels(clip)  # (6 views, T, L)
    for view in range(6):
        assert (levels[view] == expected[view // 3]).all(), (view, levels[view], expected[view // 3])


@pytest.mark.filterwarnings("ignore:kinetics400")
@pytest.mark.parametrize("name", ON_DISK)
def test_training_clips_hold_one_frame_per_segment(name, request):
    root, extra = request.getfixturevalue(f"{name}_root"), EXTRA.get(name, {})
    train = build(name, root, "train", flip=True, **extra)
    torch.manual_seed(0)
    clip, label, index = train[0]
    assert clip.shape == (4, 1, 3, 32, 32)
    num_frames = len(train.media.reader(train.records[0].media).open(train.records[0].path))
    segment = num_frames // 4
    levels = decode_levels(clip)[:, 0]
    assert ((levels // segment) == np.arange(4)).all(), levels
    torch.manual_seed(0)
    again, _, _ = train[0]
    assert torch.equal(clip, again)  # reproducible for the same torch seed


def test_a_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="data root .*nowhere.* does not exist"):
        build("something_v2", tmp_path / "nowhere", "train")


@pytest.mark.parametrize("name", ON_DISK)
def test_a_missing_annotation_file_names_what_was_expected_where(name, tmp_path):
    with pytest.raises(DataError, match="not found; expected one of") as error:
        build(name, tmp_path, "train")
    assert str(tmp_path) in str(error.value)


def test_unknown_config_keys_and_names_are_clear_errors(something_v2_root):
    with pytest.raises(DataError, match=r"unknown keys \['num_segmnts'\]. Known keys: .*num_segments"):
        build("something_v2", something_v2_root, "train", num_segmnts=8)
    with pytest.raises(ValueError, match="Did you mean 'something_v2'"):
        build_dataset({"dataset": "something_v3", "root": str(something_v2_root)}, "train")
    with pytest.raises(DataError, match="split must be one of"):
        build("something_v2", something_v2_root, "test")
