"""Frame sizes read from container headers (mp4 and webm), checked against what decord decodes."""

import os
from pathlib import Path

import av
import numpy as np
import pytest

from ean.data.readers import DecordVideoReader
from ean.data.readers.stored_size import stored_frame_size
from tests.data.media import write_video


@pytest.mark.parametrize("ext", ["mp4", "webm"])
@pytest.mark.parametrize("size", [(48, 64), (30, 40), (360, 202), (1080, 1920)])
def test_the_header_size_is_the_decoded_size(tmp_path, ext, size):
    path = write_video(str(tmp_path / f"clip.{ext}"), 3, *size)
    assert stored_frame_size(path) == size
    assert tuple(DecordVideoReader().open(path).get(np.array([0])).shape[-2:]) == size


def write_with_audio_first(path: str, faststart: bool) -> str:
    """An mp4 whose first track is audio, its index (moov) before or after the media data."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(path, "w", options=options) as container:
        audio = container.add_stream("aac", rate=16000)
        video = container.add_stream("libx264", rate=12)
        video.height, video.width, video.pix_fmt = 36, 52, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((36, 52, 3), np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        container.mux(audio.encode())
    return path


@pytest.mark.parametrize("faststart", [False, True])
def test_the_video_track_is_found_behind_an_audio_track_wherever_the_index_is(tmp_path, faststart):
    path = write_with_audio_first(str(tmp_path / "av.mp4"), faststart)
    with open(path, "rb") as f:
        head = f.read(64)
    assert (b"moov" in head) == faststart  # PyAV writes the index last unless asked otherwise
    assert stored_frame_size(path) == (36, 52)


def test_anything_else_gives_none(tmp_path):
    good = write_video(str(tmp_path / "good.mp4"), 3)
    broken = {
        "empty.mp4": b"",
        "random.mp4": np.random.default_rng(0).bytes(5000),
        "cut.mp4": Path(good).read_bytes()[:200],  # the index (at the end) is gone
        "cut.webm": Path(write_video(str(tmp_path / "good.webm"), 3)).read_bytes()[:30],
        "text.webm": b"not a video at all\n" * 10,
    }
    for name, data in broken.items():
        (tmp_path / name).write_bytes(data)
        assert stored_frame_size(str(tmp_path / name)) is None, name
    assert stored_frame_size(str(tmp_path / "missing.mp4")) is None
    assert stored_frame_size(str(tmp_path)) is None and os.path.isdir(tmp_path)  # a folder
