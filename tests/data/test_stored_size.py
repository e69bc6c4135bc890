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


def write_two_video_tracks(path: str, sizes: list[tuple[int, int]]) -> str:
    with av.open(path, "w") as container:
        streams = []
        for height, width in sizes:
            stream = container.add_stream("libx264" if path.endswith(".mp4") else "libvpx-vp9", rate=12)
            stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
            streams.append(stream)
        for stream, (height, width) in zip(streams, sizes, strict=True):
            for _ in range(2):
                frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    return path


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_video_tracks_of_different_sizes_give_none(tmp_path, ext):
    """ffmpeg (so decord) picks one of several video tracks by bit rate, which the header does not tell."""
    assert stored_frame_size(write_two_video_tracks(str(tmp_path / f"two.{ext}"), [(48, 64), (96, 160)])) is None
    assert stored_frame_size(write_two_video_tracks(str(tmp_path / f"same.{ext}"), [(48, 64), (48, 64)])) == (48, 64)


def test_webm_tracks_beyond_the_bytes_read_give_none(tmp_path, monkeypatch):
    import ean.data.readers.stored_size as stored_size

    path = write_video(str(tmp_path / "clip.webm"), 3, 272, 64)
    data = Path(path).read_bytes()
    height = data.index(b"\xba\x82\x01\x10")  # PixelHeight: 2 bytes, 272
    monkeypatch.setattr(stored_size, "EBML_HEAD_BYTES", height + 3)  # cut after its first byte: not a height of 1
    assert stored_frame_size(path) is None
    monkeypatch.setattr(stored_size, "EBML_HEAD_BYTES", height + 4)
    assert stored_frame_size(path) == (272, 64)
