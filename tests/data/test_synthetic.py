"""The synthetic dataset: real mp4 files in SSv2's format, deterministic by seed, read like something_v2."""

import hashlib
import json
import os

import numpy as np
import pytest
import torch

from ean.data import DataError, build_dataset, build_loader, generate_synthetic
from ean.data.readers import DecordVideoReader
from ean.data.synthetic import TEMPLATES
from ean.data.synthetic.scenes import sample_action

SMALL = {"num_videos": 30, "num_classes": 10, "size": 32, "min_frames": 12, "max_frames": 16}


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def digest(root):
    h = hashlib.sha256()
    for name in sorted(os.listdir(os.path.join(root, "videos"))):
        h.update(read(os.path.join(root, "videos", name), "rb"))
    for name in ("labels.json", "train.json", "validation.json"):
        h.update(read(os.path.join(root, name), "rb"))
    return h.hexdigest()


def test_generation_is_deterministic_by_seed(tmp_path):
    a = generate_synthetic(str(tmp_path / "a"), seed=3, **SMALL)
    b = generate_synthetic(str(tmp_path / "b"), seed=3, **SMALL)
    c = generate_synthetic(str(tmp_path / "c"), seed=4, **SMALL)
    assert digest(a) == digest(b) != digest(c)


def test_files_follow_something_v2s_format(tmp_path):
    root = generate_synthetic(str(tmp_path / "s"), **SMALL)
    labels = json.loads(read(os.path.join(root, "labels.json")))
    assert labels["Moving something from left to right"] == "0" and len(labels) == 10
    train = json.loads(read(os.path.join(root, "train.json")))
    val = json.loads(read(os.path.join(root, "validation.json")))
    assert len(train) == 20 and len(val) == 10  # the last of each class's 3 videos
    entry = train[0]
    assert set(entry) == {"id", "label", "template", "placeholders"}
    assert (
        entry["template"] == TEMPLATES[0] and entry["label"] == f"moving {entry['placeholders'][0]} from left to right"
    )
    video = DecordVideoReader().open(os.path.join(root, "videos", f"{entry['id']}.mp4"))
    assert 12 <= len(video) <= 16 and video.get(np.array([0])).shape == (1, 3, 32, 42)


def test_the_dataset_generates_on_first_use_and_reuses_its_files(synthetic_root):
    cfg = {"dataset": "synthetic", "root": synthetic_root, **SMALL, "num_segments": 4, "crop_size": 32}
    train = build_dataset(cfg, "train")
    first = os.path.getmtime(os.path.join(synthetic_root, "labels.json"))
    val = build_dataset(cfg, "val")
    assert os.path.getmtime(os.path.join(synthetic_root, "labels.json")) == first
    assert (len(train), len(val), train.num_classes) == (20, 10, 10)
    assert train.flip_labels.pairs == {0: 1, 1: 0}  # left to right <-> right to left
    clip, label, index = train[5]
    assert clip.shape == (4, 1, 3, 32, 32) and label in (train.labels[5], train.flip_labels.flipped(train.labels[5]))
    with pytest.raises(DataError, match="generated with"):
        build_dataset({**cfg, "seed": 1}, "train")


def test_generation_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        generate_synthetic(str(tmp_path), **SMALL)


@pytest.mark.parametrize("made", [True, False])
def test_a_root_that_is_a_link_gets_the_data_where_it_points(tmp_path, made):
    """``data.root`` given as a link (kept as given by planning) to an empty folder, or to none yet: the data is
    generated where it points, the link left a link, and read through it."""
    target = tmp_path / "store" / "synthetic"
    if made:
        target.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    assert generate_synthetic(str(link), seed=3, **SMALL) == str(link)
    assert link.is_symlink() and (target / "videos").is_dir()
    assert digest(str(link)) == digest(generate_synthetic(str(tmp_path / "plain"), seed=3, **SMALL))


def test_actions_need_time_to_tell_apart():
    rng = np.random.default_rng(0)
    fall = sample_action(6, 128, 96, 10.0, rng)
    ys = [fall.states(p)[0].y for p in np.linspace(0, 1, 11)]
    assert ys[0] == ys[4] and np.all(np.diff(np.diff(ys[4:])) > 0)  # at rest, then accelerating
    pretend = sample_action(9, 128, 96, 10.0, rng)
    start, middle, end = (pretend.states(p)[0] for p in (0.0, 0.5, 1.0))
    assert (start.x, start.y) == pytest.approx((end.x, end.y)) and (middle.x, middle.y) != (start.x, start.y)
    closer = sample_action(7, 128, 96, 10.0, rng)
    gap = [abs(closer.states(p)[0].x - closer.states(p)[1].x) for p in (0.0, 1.0)]
    assert gap[1] < gap[0]


def loader_batches(root, seed, workers, epochs=1):
    cfg = {"dataset": "synthetic", "root": root, **SMALL, "num_segments": 4, "frames_per_segment": 2}
    loader = build_loader({**cfg, "crop_size": 32, "num_workers": workers}, "train", batch_size=4, seed=seed)
    batches = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        batches += list(loader)
    return batches


def test_loader_batches_shapes_and_reproducibility(synthetic_root):
    a = loader_batches(synthetic_root, seed=0, workers=0, epochs=2)
    b = loader_batches(synthetic_root, seed=0, workers=0, epochs=2)
    c = loader_batches(synthetic_root, seed=1, workers=0)
    clips, labels, index = a[0]
    assert clips.shape == (4, 4, 2, 3, 32, 32) and clips.dtype == torch.uint8
    assert labels.dtype == torch.int64 and index.dtype == torch.int64
    assert len(a) == 10  # 20 videos, batches of 4, two epochs
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[2], y[2]) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0][2], a[4][2]) or not torch.equal(a[0][0], a[4][0])  # epochs differ
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


def test_batches_do_not_depend_on_the_number_of_workers(synthetic_root):
    a = loader_batches(synthetic_root, seed=0, workers=2)
    b = loader_batches(synthetic_root, seed=0, workers=0)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


def test_val_loader_keeps_order_and_every_video(synthetic_root):
    cfg = {"dataset": "synthetic", "root": synthetic_root, **SMALL, "num_segments": 4, "crop_size": 32}
    loader = build_loader({**cfg, "num_workers": 0, "test_clips": 2}, "val", batch_size=3, seed=0)
    batches = list(loader)
    assert torch.cat([i for _, _, i in batches]).tolist() == list(range(10))
    assert batches[0][0].shape == (3, 2, 4, 1, 3, 32, 32)


def test_a_distributed_training_loader_deals_this_ranks_passes_of_the_global_batches(synthetic_root, tmp_path):
    """One rank of one is the single-process loader; the global batch is the trainer's, not the loader's batch."""
    cfg = {"dataset": "synthetic", "root": synthetic_root, **SMALL, "num_workers": 0}
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed not built")
    import torch.distributed as dist

    single = build_loader(cfg, "train", batch_size=2, seed=0, global_batch=8)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        loader = build_loader(cfg, "train", batch_size=2, seed=0, distributed=True, global_batch=8)
    finally:
        dist.destroy_process_group()
    for sampler in (loader.sampler, single.sampler):
        assert (sampler.global_batch, sampler.per_device_batch, sampler.world) == (8, 2, 1)
        sampler.set_epoch(3)
    assert list(loader.sampler) == list(single.sampler) and len(loader) == 8  # 20 videos: 2 global batches of 8


def test_clutter_zero_gives_plain_backgrounds_without_distractors():
    import numpy as np

    from ean.data.synthetic.render import background, distractors

    rng = np.random.default_rng(0)
    plain = background(32, 42, rng, clutter=0.0)
    assert plain.reshape(-1, 3).std(axis=0).max() == 0  # one colour, no shapes, no noise
    assert distractors(32, 42, rng, clutter=0.0) == []
    busy = background(32, 42, np.random.default_rng(0))
    assert busy.reshape(-1, 3).std(axis=0).max() > 5


def test_clutter_is_part_of_the_dataset_identity(tmp_path):
    import json

    from ean.data import generate_synthetic

    easy = generate_synthetic(str(tmp_path / "easy"), num_videos=4, num_classes=2, size=16, clutter=0.0)
    default = generate_synthetic(str(tmp_path / "default"), num_videos=4, num_classes=2, size=16)

    def manifest(root: str) -> dict:
        with open(f"{root}/synthetic.json") as f:
            return json.load(f)

    assert manifest(easy)["clutter"] == 0.0
    assert "clutter" not in manifest(default)  # default datasets keep their parameters


# Fingerprints of version 0.4.1 for settings written as the studies write them: they must not change.
PUBLISHED = [({}, "sha256:627fe34f0a32ebda"), ({"clutter": 0}, "sha256:347e5fc768a86ae8")]


@pytest.mark.parametrize(
    ("given", "same_as"),
    [
        ({"clutter": 1}, {}),
        ({"clutter": 0.0}, {"clutter": 0}),
        ({"num_videos": 24.0}, {"num_videos": 24}),
        ({"size": 96.0, "clutter": 1.0}, {}),
    ],  # fmt: skip
)
def test_one_dataset_has_one_fingerprint_however_its_numbers_are_written(given, same_as):
    from ean.data.datasets.synthetic import Synthetic

    assert Synthetic.fingerprint(given) == Synthetic.fingerprint(same_as)
    assert Synthetic.fingerprint({"clutter": 0.5}) != Synthetic.fingerprint({})
    for settings, fingerprint in PUBLISHED:
        assert Synthetic.fingerprint(settings) == fingerprint


def test_a_trial_key_does_not_see_how_the_synthetic_numbers_are_written(tmp_path):
    from ean.trial import trial_key
    from tests.train.helpers import tiny_config, with_changes

    config = tiny_config(str(tmp_path / "data"))
    written = with_changes(config, data={"clutter": 1, "size": float(config["data"]["size"])})
    assert trial_key(written) == trial_key(with_changes(config, data={"clutter": 1.0})) == trial_key(config)
    assert trial_key(with_changes(config, data={"clutter": 0.0})) == trial_key(
        with_changes(config, data={"clutter": 0})
    )
