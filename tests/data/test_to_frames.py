"""The to_frames command: a video dataset converted into JPEG frame folders that the same class reads."""

import os

import av
import numpy as np
import pytest
import torch
from PIL import Image

from ean.data import DataError, build_dataset
from ean.data.to_frames import convert_video, short_side_size
from ean.data.to_frames import main as to_frames_main
from tests.data.media import decode_levels, level

CFG = {"num_segments": 4, "resize": [48, 64], "crop_size": 32, "decode_timeout_s": 0}


@pytest.mark.filterwarnings("ignore:kinetics400")
@pytest.mark.parametrize(
    "name,fixture,count,folder,frames",
    [
        ("something_v2", "something_v2_root", 6, "20bn-something-something-v2/21", 26),
        ("kinetics400", "kinetics400_root", 5, "val/zumba/ddd_000030_000040", 22),
        ("diving48", "diving48_root", 3, "rgb/vid_c_00003", 30),
    ],
)
def test_converted_frames_give_the_same_clips(name, fixture, count, folder, frames, tmp_path, capsys, request):
    root = request.getfixturevalue(fixture)
    out = tmp_path / "frames"
    with pytest.raises(DataError, match="to_frames"):
        build_dataset({"dataset": name, "root": str(root), "media": "frames"}, "val")
    argv = ["--dataset", name, "--root", str(root), "--out", str(out), "--workers", "1"]
    assert to_frames_main([*argv, "--short-side", "0"]) == 0
    assert f"{count} of {count} videos are frame folders" in capsys.readouterr().err
    folder = out / folder
    assert sorted(os.listdir(folder))[:2] == ["00001.jpg", "00002.jpg"] and len(os.listdir(folder)) == frames

    cfg = {"dataset": name, "root": str(root), **CFG}
    videos = build_dataset(cfg, "val")
    frames = build_dataset({**cfg, "media": "frames", "frames_root": str(out)}, "val")
    assert frames.records[0].media == "frames" and frames.labels == videos.labels
    for i in range(len(videos)):
        assert (decode_levels(videos[i][0]) == decode_levels(frames[i][0])).all()

    mtime = os.path.getmtime(folder)
    assert to_frames_main([*argv, "--short-side", "0"]) == 0  # finished folders are skipped: a run resumes
    assert os.path.getmtime(folder) == mtime
    capsys.readouterr()
    assert to_frames_main(argv) == 2  # other settings (--short-side 256) would mix two makings in one folder
    assert "made with --quality 90 --short-side 0, not --quality 90 --short-side 256" in capsys.readouterr().err
    assert os.path.getmtime(folder) == mtime


def test_short_side_resize(something_v2_root, tmp_path):
    out = tmp_path / "f256"
    argv = ["--dataset", "something_v2", "--root", str(something_v2_root), "--out", str(out), "--splits", "val"]
    assert to_frames_main([*argv, "--short-side", "24", "--workers", "1"]) == 0
    folder = out / "20bn-something-something-v2" / "22"
    names = sorted(os.listdir(folder))
    frames = torch.stack([read_frame(folder / name) for name in names])
    assert frames.shape[-2:] == (24, 32)  # 48 x 64 shrunk, the aspect kept
    centre = frames[:, 0, 8:16, 10:22].float().mean(dim=(-1, -2))  # frames are 6 grey levels apart
    assert (centre - torch.tensor([level(i) for i in range(len(names))])).abs().max() < 3  # every frame, in order


def read_frame(path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image)).permute(2, 0, 1)


def test_smaller_frames_are_never_upscaled():
    assert short_side_size(48, 64, 256) == (48, 64) and short_side_size(48, 64, 0) == (48, 64)
    assert short_side_size(48, 64, 24) == (24, 32) and short_side_size(1080, 1920, 256) == (256, 455)


def write_h264(path, height: int, width: int, num_frames: int) -> bytes:
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for _ in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path.read_bytes()


def test_a_video_whose_frame_size_changes_is_not_converted(tmp_path):
    """Two H.264 streams back to back decode as 3 landscape then 3 portrait frames: scaling all to the first
    size would squash the portrait ones, so the video is reported instead, and nothing is left behind."""
    video = tmp_path / "var.h264"
    video.write_bytes(write_h264(tmp_path / "a.h264", 48, 64, 3) + write_h264(tmp_path / "b.h264", 72, 54, 3))
    reason = convert_video(str(video), str(tmp_path / "out"), short_side=24)
    assert reason == "ValueError: frame size changes mid-stream: frame 4 is 54x72, earlier ones 64x48"
    assert sorted(os.listdir(tmp_path)) == ["a.h264", "b.h264", "var.h264"]


def test_frames_made_otherwise_are_other_data(something_v2_root, tmp_path, capsys):
    """Two extractions of the same videos (another short side) name other data in a trial's fingerprint;
    frames without a manifest (made before it existed) keep the fingerprint they had, and a run into such a
    folder is refused rather than claiming settings for frames it did not make."""
    from ean.data.identity import data_fingerprint
    from ean.data.layout import FRAMES_MANIFEST

    argv = ["--dataset", "something_v2", "--root", str(something_v2_root), "--workers", "1"]
    fingerprints = {}
    for short_side in ("0", "24"):
        out = tmp_path / f"frames{short_side}"
        assert to_frames_main([*argv, "--out", str(out), "--short-side", short_side]) == 0
        cfg = {"dataset": "something_v2", "root": str(something_v2_root), "media": "frames", "frames_root": str(out)}
        fingerprints[short_side] = data_fingerprint(cfg)
    assert fingerprints["0"] != fingerprints["24"]

    (tmp_path / "frames24" / FRAMES_MANIFEST).rename(tmp_path / "frames24" / "made.json")
    legacy = {"dataset": "something_v2", "root": str(something_v2_root), "media": "frames"}
    legacy["frames_root"] = str(tmp_path / "frames24")
    assert data_fingerprint(legacy) not in fingerprints.values()
    (tmp_path / "frames0" / FRAMES_MANIFEST).unlink()
    assert data_fingerprint({**legacy, "frames_root": str(tmp_path / "frames0")}) == data_fingerprint(legacy)
    capsys.readouterr()
    assert to_frames_main([*argv, "--out", str(tmp_path / "frames0"), "--short-side", "0"]) == 2
    assert "without .ean_frames.json" in capsys.readouterr().err
