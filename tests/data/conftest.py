"""Fixtures: small datasets written in their official layouts (real webm, mp4 and JPEG files)."""

from __future__ import annotations

import json
import os

import pytest

from tests.data.media import write_frames, write_video

SOMETHING_CLASSES = [
    "Pushing something from left to right",
    "Pushing something from right to left",
    "Moving something up",
    "Putting something on a surface",
]
# (id, class, frames): frame counts differ so that sampling differs per video
SOMETHING_TRAIN = [("11", 0, 24), ("12", 1, 30), ("13", 2, 17), ("14", 3, 40)]
SOMETHING_VAL = [("21", 1, 26), ("22", 3, 33)]


def _dump(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if isinstance(content, str):
            f.write(content)
        else:
            json.dump(content, f)


@pytest.fixture(scope="session")
def something_v2_root(tmp_path_factory):
    """labels/{labels,train,validation}.json and 20bn-something-something-v2/<id>.webm (VP9)."""
    root = tmp_path_factory.mktemp("sthv2")
    _dump(root / "labels" / "labels.json", {n: str(i) for i, n in enumerate(SOMETHING_CLASSES)})
    for split, entries in (("train", SOMETHING_TRAIN), ("validation", SOMETHING_VAL)):
        listed = []
        for vid, label, frames in entries:
            template = SOMETHING_CLASSES[label].replace("something", "[something]")
            label_text = template.replace("[something]", "a cup").lower()
            listed.append({"id": vid, "label": label_text, "template": template, "placeholders": ["a cup"]})
            write_video(str(root / "20bn-something-something-v2" / f"{vid}.webm"), frames)
        _dump(root / "labels" / f"{split}.json", listed)
    return root


@pytest.fixture(scope="session")
def something_v1_root(tmp_path_factory):
    """something-something-v1-{labels,train,validation}.csv and 20bn-something-something-v1/<id>/00001.jpg."""
    root = tmp_path_factory.mktemp("sthv1")
    _dump(root / "something-something-v1-labels.csv", "\n".join(SOMETHING_CLASSES) + "\n")
    for split, entries in (("train", SOMETHING_TRAIN), ("validation", SOMETHING_VAL)):
        lines = [f"{vid};{SOMETHING_CLASSES[label]}" for vid, label, _ in entries]
        _dump(root / f"something-something-v1-{split}.csv", "\n".join(lines) + "\n")
        for vid, _, frames in entries:
            write_frames(str(root / "20bn-something-something-v1" / vid), frames)
    return root


KINETICS_TRAIN = [("abseiling", "aaa", 10, 20, 25), ("zumba", "bbb", 0, 10, 31), ("juggling balls", "ccc", 5, 15, 19)]
KINETICS_VAL = [("zumba", "ddd", 30, 40, 22), ("abseiling", "eee", 1, 11, 28)]


@pytest.fixture(scope="session")
def kinetics400_root(tmp_path_factory):
    """train.csv / validate.csv and train/<label>/<ytid>_<start:06d>_<end:06d>.mp4; one listed clip is absent."""
    root = tmp_path_factory.mktemp("k400")
    for split, folder, rows in (("train", "train", KINETICS_TRAIN), ("validate", "val", KINETICS_VAL)):
        lines = ["label,youtube_id,time_start,time_end,split"]
        for label, ytid, start, end, frames in rows:
            lines.append(f"{label},{ytid},{start},{end},{split}")
            write_video(str(root / folder / label / f"{ytid}_{start:06d}_{end:06d}.mp4"), frames, 48, 80)
        _dump(root / f"{split}.csv", "\n".join(lines) + "\n")
    with open(root / "train.csv", "a") as f:
        f.write("zumba,gone,3,13,train\n")  # removed from YouTube: not on disk
    return root


DIVING_TRAIN = [("vid_a_00001", 3, 21), ("vid_b_00002", 47, 27)]
DIVING_VAL = [("vid_c_00003", 0, 30)]


@pytest.fixture(scope="session")
def diving48_root(tmp_path_factory):
    """Diving48_{train,test}.json (V1 labels, the paper's), the same as V2, Diving48_vocab.json, rgb/<vid>.mp4."""
    root = tmp_path_factory.mktemp("diving48")
    vocab = [["Back", f"{i}som", "NoTwis", "PIKE"] for i in range(48)]
    _dump(root / "Diving48_vocab.json", vocab)
    for split, entries in (("train", DIVING_TRAIN), ("test", DIVING_VAL)):
        listed = [{"vid_name": v, "label": lab, "start_frame": 0, "end_frame": n - 1} for v, lab, n in entries]
        _dump(root / f"Diving48_{split}.json", listed)
        _dump(root / f"Diving48_V2_{split}.json", listed)
        for vid, _, frames in entries:
            write_video(str(root / "rgb" / f"{vid}.mp4"), frames)
    return root


@pytest.fixture(scope="session")
def list_file_root(tmp_path_factory):
    """TSN lists (path num_frames label): frame folders (img_00001.jpg) and mp4 videos mixed."""
    root = tmp_path_factory.mktemp("lists")
    write_frames(str(root / "frames" / "a"), 20, tmpl="img_{:05d}.jpg")
    write_video(str(root / "videos" / "b.mp4"), 26)
    write_frames(str(root / "frames" / "c"), 35, tmpl="img_{:05d}.jpg")
    _dump(root / "train.txt", "frames/a 20 0\nvideos/b.mp4 26 1\n")
    _dump(root / "val.txt", "frames/c 35 1\n")
    _dump(root / "classes.txt", "class zero\nclass one\n")
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synthetic") / "data")
