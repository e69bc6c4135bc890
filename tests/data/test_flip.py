"""Horizontal flip: pairs found from class names; the flip swaps exactly the paired labels."""

import numpy as np
import torch

from ean.data.clip_transform import TrainClipTransform
from ean.data.flip import FlipLabels, mirror_name

NAMES = [
    "Pushing something from left to right",  # 0 <-> 1
    "Pushing something from right to left",  # 1
    "Moving something up",  # 2: no direction under a horizontal mirror
    "Turning the camera left while filming something",  # 3 <-> 4
    "Turning the camera right while filming something",  # 4
    "Pulling something from right to left",  # 5: direction, no partner
    "Spinning something clockwise",  # 6 <-> 7
    "Spinning something counterclockwise",  # 7
    "Putting something to the left of something",  # 8: direction, no partner
]


def test_mirror_name_swaps_whole_words_only():
    assert mirror_name("Pushing something from left to right") == "pushing something from right to left"
    assert mirror_name("Bright lights") == "bright lights"


def test_pairs_come_from_the_class_names():
    flips = FlipLabels.from_class_names(NAMES)
    assert flips.pairs == {0: 1, 1: 0, 3: 4, 4: 3, 6: 7, 7: 6}
    assert flips.unflippable == {5, 8}
    assert [flips.flipped(i) for i in range(9)] == [1, 0, 2, 4, 3, 5, 7, 6, 8]


def test_something_v1_pairs_match_the_official_hard_coded_ones():
    # the official code swaps V1 classes 86-87, 93-94 and 166-167; these are their names
    names = [f"class {i}" for i in range(174)]
    names[86], names[87] = "Pulling something from left to right", "Pulling something from right to left"
    names[93], names[94] = "Pushing something from left to right", "Pushing something from right to left"
    names[166], names[167] = (
        "Turning the camera left while filming something",
        "Turning the camera right while filming something",
    )
    assert FlipLabels.from_class_names(names).pairs == {86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166}


def striped_frames():
    frames = torch.full((2, 3, 32, 32), 80, dtype=torch.uint8)
    frames[..., :4] = 255  # bright stripe on the left
    return frames


def flipped(clip):
    return bool(clip[..., -2:].float().mean() > clip[..., :2].float().mean())


def test_flip_swaps_exactly_the_paired_labels():
    transform = TrainClipTransform(
        (32, 32), 32, scales=(1.0,), flip=True, flip_labels=FlipLabels.from_class_names(NAMES)
    )
    rng = np.random.default_rng(0)
    seen = {label: set() for label in range(len(NAMES))}
    for label in range(len(NAMES)):
        for _ in range(40):
            clip, new = transform(striped_frames(), label, rng)
            was_flipped = flipped(clip)
            seen[label].add(was_flipped)
            assert new == (transform.flip_labels.flipped(label) if was_flipped else label)
    assert all(seen[label] == {False, True} for label in (0, 1, 2, 3, 4, 6, 7))
    assert seen[5] == {False} and seen[8] == {False}  # direction without a partner: never flipped


def test_no_flip_when_disabled():
    transform = TrainClipTransform(
        (32, 32), 32, scales=(1.0,), flip=False, flip_labels=FlipLabels.from_class_names(NAMES)
    )
    rng = np.random.default_rng(0)
    assert not any(flipped(transform(striped_frames(), 0, rng)[0]) for _ in range(20))


def test_the_papers_rule_never_flips_a_direction_class():
    flips = FlipLabels.from_class_names(NAMES)
    transform = TrainClipTransform((32, 32), 32, scales=(1.0,), flip=True, flip_labels=flips.skipping())
    rng = np.random.default_rng(0)
    direction = set(flips.pairs) | set(flips.unflippable)
    for label in range(len(NAMES)):
        outcomes = {flipped(transform(striped_frames(), label, rng)[0]) for _ in range(40)}
        assert outcomes == ({False} if label in direction else {False, True}), label
        assert transform(striped_frames(), label, rng)[1] == label  # labels never change


def test_the_flip_rule_is_in_the_data_identity_only_when_not_the_default():
    from ean.data.identity import data_identity

    cfg = {"dataset": "synthetic", "root": "x"}
    assert data_identity({**cfg, "flip_rule": "swap"}) == data_identity(cfg)
    assert data_identity({**cfg, "flip_rule": "skip"})["flip_rule"] == "skip"
