"""Readers hand over only the region a clip's crops need, and every reader gives the same clips."""

import os

import numpy as np
import pytest
import torch

from ean.data import build_dataset
from ean.data.clip_transform import EvalClipTransform, TrainClipTransform
from ean.data.errors import BadMediaError
from ean.data.readers import DecordVideoReader, FrameFolderReader, SubprocessVideoReader
from ean.data.transforms import Box
from tests.data.media import write_frames, write_video

BOX = Box(5, 7, 30, 41)  # in pixels of a 48 x 64 source


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("readers")
    write_video(str(root / "clip.mp4"), 30)
    write_video(str(root / "clip.webm"), 30)
    write_frames(str(root / "clip"), 30)
    return root


READERS = {
    "in-process": (DecordVideoReader, "clip.mp4"),
    "decoder process mp4": (lambda: SubprocessVideoReader(20.0), "clip.mp4"),
    "decoder process webm": (lambda: SubprocessVideoReader(20.0), "clip.webm"),
    "frame folder": (FrameFolderReader, "clip"),
}


@pytest.mark.parametrize("kind", READERS)
def test_a_crop_is_exactly_that_region_of_the_whole_frames(kind, media_root):
    make, name = READERS[kind]
    reader = make()
    media = reader.open(str(media_root / name))
    indices = np.array([[0, 1], [7, 7], [29, 29]])  # repeats: each distinct frame is decoded once
    whole = media.get(indices).clone()
    assert whole.shape == (6, 3, 48, 64) and whole.dtype == torch.uint8
    decoded = media.decode(indices)
    assert decoded.frame_size == (48, 64)
    region = decoded.crop(BOX)
    assert region.shape == (6, 3, 30, 41)
    assert torch.equal(region, whole[..., 5:35, 7:48])
    if kind.startswith("decoder"):  # only the region crossed: the shared buffer holds it compactly
        assert region.is_contiguous(memory_format=torch.channels_last)
    reader.close()


def test_frames_of_different_sizes_are_a_bad_folder(tmp_path):
    write_frames(str(tmp_path / "mixed"), 4)
    write_frames(str(tmp_path / "big"), 1, height=60)
    os.replace(tmp_path / "big" / "00001.jpg", tmp_path / "mixed" / "00003.jpg")
    media = FrameFolderReader().open(str(tmp_path / "mixed"))
    with pytest.raises(BadMediaError, match="different sizes"):
        media.decode(np.arange(4))


@pytest.mark.parametrize("split", ["train", "val"])
def test_the_decoder_process_and_in_process_decoding_give_identical_clips(split, media_root):
    (media_root / "list.txt").write_text("clip.mp4 30 0\nclip.webm 30 1\n")
    cfg = {"dataset": "list_file", "root": str(media_root), "train_list": "list.txt", "val_list": "list.txt"}
    cfg.update(num_segments=4, frames_per_segment=2, resize=[40, 56], crop_size=24, test_crops=3)
    inproc = build_dataset({**cfg, "decode_timeout_s": 0}, split)
    child = build_dataset({**cfg, "decode_timeout_s": 20.0}, split)
    for seed in range(6):
        for i in range(2):
            a, b = inproc[(i, seed)], child[(i, seed)]
            assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    # and both equal the transform applied to whole frames decoded at the working size, with the same random stream
    record = inproc.records[0]
    media = DecordVideoReader().open(record.path, (40, 56))
    if split == "train":
        rng = np.random.default_rng(3)
        frames = media.get(inproc.sampler.train(len(media), rng))
        expected, _ = TrainClipTransform((40, 56), 24)(frames, record.label, rng)
        assert torch.equal(child[(0, 3)][0], expected[0].reshape(4, 2, 3, 24, 24))
    else:
        frames = media.get(inproc.sampler.test(len(media)))
        expected = EvalClipTransform((40, 56), 24, crops=3)(frames)
        assert torch.equal(child[0][0], expected.reshape(3, 4, 2, 3, 24, 24))
    child.close()


def test_frames_replaced_by_a_later_decode_are_not_handed_over(media_root):
    reader = SubprocessVideoReader(20.0)
    first = reader.open(str(media_root / "clip.mp4")).decode(np.arange(4))
    reader.open(str(media_root / "clip.webm")).decode(np.arange(2))
    with pytest.raises(RuntimeError, match="replaced by a later decode"):
        first.crop(BOX)
    reader.close()


def test_the_decoder_process_decodes_an_open_video_again_after_releasing_its_reader(media_root):
    """The decoder process lets decord's reader go after each decode (it would read ahead in the background);
    a second decode of the same open video reopens it and gets the right frames."""
    path = str(media_root / "clip.mp4")
    expected = DecordVideoReader().open(path)
    reader = SubprocessVideoReader(20.0)
    media = reader.open(path)
    for indices in (np.array([0, 1, 2, 3]), np.array([25, 3, 17])):
        assert torch.equal(media.get(indices), expected.get(indices))
    reader.close()


@pytest.mark.parametrize("kind", [k for k in READERS if k != "frame folder"])
def test_a_video_opened_with_a_size_decodes_scaled_to_it(kind, media_root):
    make, name = READERS[kind]
    reader = make()
    scaled = reader.open(str(media_root / name), (30, 40)).get(np.array([0, 9, 29])).clone()
    assert scaled.shape == (3, 3, 30, 40)
    whole = DecordVideoReader().open(str(media_root / name)).get(np.array([0, 9, 29]))
    resized = torch.nn.functional.interpolate(whole.float(), size=(30, 40), mode="bilinear", antialias=True)
    assert (scaled.float() - resized).abs().mean() < 4  # another scaler (ffmpeg's), the same picture
    assert (centre_grey(scaled) - centre_grey(whole)).abs().max() < 3  # the same frames (6 grey levels apart)
    reader.close()


def test_videos_decode_at_the_working_size_unless_switched_off(media_root):
    (media_root / "list.txt").write_text("clip.mp4 30 0\nclip.webm 30 1\n")
    cfg = {"dataset": "list_file", "root": str(media_root), "train_list": "list.txt", "decode_timeout_s": 0}
    cfg.update(num_segments=4, crop_size=24, flip=False)
    at_decode = build_dataset({**cfg, "resize": [40, 56]}, "train")
    mp4, webm = at_decode.records
    assert at_decode.media.decode_size(mp4) == at_decode.media.decode_size(webm) == (40, 56)
    short_side = build_dataset({**cfg, "resize": 40}, "train")  # the 48 x 64 videos' size, from their headers
    assert short_side.media.decode_size(mp4) == short_side.media.decode_size(webm) == (40, 53)
    assert short_side[(0, 0)][0].shape == (4, 1, 3, 24, 24)
    assert build_dataset({**cfg, "resize": 48}, "train").media.decode_size(mp4) is None  # already the working size
    assert build_dataset({**cfg, "resize": [60, 80]}, "train").media.decode_size(mp4) is None  # enlarged after the crop
    after = build_dataset({**cfg, "resize": [40, 56], "resize_at_decode": False}, "train")
    assert after.media.decode_size(mp4) is None
    for seed in range(3):  # the same crop and frames either way; only the scaler differs
        a, b = at_decode[(0, seed)][0].float(), after[(0, seed)][0].float()
        assert a.shape == b.shape == (4, 1, 3, 24, 24) and (a - b).abs().mean() < 4
        assert (centre_grey(a) - centre_grey(b)).abs().max() < 3


def centre_grey(frames: torch.Tensor) -> torch.Tensor:
    """Mean of the centre of each frame (..., 3, H, W) of a ``tests.data.media`` clip; frames differ by 6 in it.

    ffmpeg's scaled colour conversion comes out 1-2 grey levels darker than its unscaled one, so frames decoded
    at another size are told apart by this, not by ``decode_levels``' exact rounding."""
    h, w = frames.shape[-2:]
    return frames[..., 0, h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].float().mean(dim=(-1, -2))
