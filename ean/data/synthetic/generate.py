"""Writes a synthetic dataset in Something-Something V2's format: mp4 videos (PyAV) and JSON annotations.

Layout written under ``root``::

    videos/<id>.mp4                 H.264, ``size`` x ``size * 4 / 3`` pixels, 12 fps
    labels.json                     {"Moving something from left to right": "0", ...}
    train.json, validation.json     [{"id", "label", "template", "placeholders"}, ...]
    synthetic.json                  the generation parameters (a root is reused only with the same ones)

Deterministic by seed: video ``i`` has class ``i % num_classes`` and its own random stream
``default_rng([seed, i])``; the last fifth (at least one) of each class's videos goes to validation.

The files are written by a fresh process (:mod:`ean.data.synthetic.writer`, never a fork of the caller) that
reports each finished video: an encoder (libx264 through PyAV, in C) that hangs cannot be interrupted in the
process that called it, so when one video takes longer
than ``video_timeout_s`` the writer is killed and :func:`generate_synthetic` raises TimeoutError naming the
video, leaving no files behind; the caller's run fails instead of stalling.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator

import numpy as np

from ean.data.errors import DataError
from ean.data.synthetic.render import COLOURS, SHAPES, render_clip
from ean.data.synthetic.scenes import TEMPLATES, sample_action

MANIFEST = "synthetic.json"
FORMAT_VERSION = 1
FPS = 12
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VIDEO_TIMEOUT_S = 120.0  # far above one video's time (benchmarks/RESULTS.md, "Data loading, by hand")


def generate_synthetic(
    root: str,
    *,
    num_videos: int = 100,
    num_classes: int = 10,
    size: int = 96,
    seed: int = 0,
    min_frames: int = 24,
    max_frames: int = 48,
    clutter: float = 1.0,
    video_timeout_s: float = VIDEO_TIMEOUT_S,
) -> str:
    """Writes the dataset under ``root`` unless it is already there with the same parameters.

    Args:
        root: output folder (created; must be absent, empty or a synthetic dataset of the same parameters).
        num_videos: videos in total (train + validation).
        num_classes: classes used, the first ``num_classes`` of TEMPLATES (at most 10).
        size: frame height in pixels (even); width is ``size * 4 / 3`` rounded to even.
        seed: the random seed; the same parameters give the same files.
        min_frames: shortest clip in frames.
        max_frames: longest clip in frames.
        clutter: background shapes, noise and moving distractors, from 0 (plain background, no
            distractors: an easy set for quick learning checks) to 1 (the default, hard by design).
        video_timeout_s: longest time to write one video (or the annotation files) before the writer
            process is killed and TimeoutError raised; not a parameter of the data.

    Returns:
        ``root``.
    """
    settings = {"num_videos": num_videos, "num_classes": num_classes, "size": size, "seed": seed}
    params = _params(**settings, min_frames=min_frames, max_frames=max_frames, clutter=clutter)
    _check_params(params)
    root = os.fspath(root)
    if _existing(root, params):
        return root
    target = os.path.realpath(root)  # a root that is a link: the data goes where it points (a dangling one too)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".synthetic-", dir=parent)
    try:
        _write_in_child(scratch, params, video_timeout_s, root)
        _publish(scratch, target, params)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def _params(**settings) -> dict:
    """The manifest's parameters of a dataset of ``settings`` (``generate_synthetic``'s keyword arguments)."""
    clutter = settings.pop("clutter", 1.0)
    params = {"format": FORMAT_VERSION, **settings}
    if clutter != 1.0:  # the default keeps the parameters (and so existing datasets) of earlier versions
        params["clutter"] = float(clutter)
    return params


def existing_synthetic(root: str, settings: dict) -> bool:
    """Whether ``root`` holds the dataset of ``settings`` (``generate_synthetic``'s keyword arguments), without
    writing anything; DataError if it holds another dataset or other files."""
    return _existing(os.fspath(root), _params(**settings))


def _check_params(params: dict) -> None:
    if not 1 <= params["num_classes"] <= len(TEMPLATES):
        raise DataError(f"synthetic: num_classes must be 1..{len(TEMPLATES)}, got {params['num_classes']}")
    if params["size"] < 16 or params["size"] % 2:
        raise DataError(f"synthetic: size must be an even number >= 16, got {params['size']}")
    if not 2 <= params["min_frames"] <= params["max_frames"]:
        raise DataError("synthetic: need 2 <= min_frames <= max_frames")
    if params["num_videos"] < 2 * params["num_classes"]:
        raise DataError("synthetic: num_videos must be at least 2 * num_classes")
    if not 0.0 <= params.get("clutter", 1.0) <= 1.0:
        raise DataError(f"synthetic: clutter must be in [0, 1], got {params['clutter']}")


def _existing(root: str, params: dict) -> bool:
    """True if ``root`` holds this dataset; DataError if it holds anything else."""
    manifest = os.path.join(root, MANIFEST)
    if os.path.isfile(manifest):
        with open(manifest) as f:
            found = json.load(f)
        if found != params:
            raise DataError(
                f"synthetic: {root!r} holds a synthetic dataset generated with {found}, not {params}; "
                "use another data root (or delete that folder)"
            )
        return True
    if os.path.isdir(root) and os.listdir(root):
        raise DataError(f"synthetic: {root!r} is not empty and holds no {MANIFEST}; refusing to write there")
    return False


def _publish(scratch: str, root: str, params: dict) -> None:
    """Moves the finished dataset into place (atomically; a concurrent writer of the same data may win)."""
    try:
        if os.path.isdir(root):
            os.rmdir(root)  # empty, checked above
        os.rename(scratch, root)
    except OSError:
        if not _existing(root, params):
            raise


WRITER = (sys.executable, "-m", "ean.data.synthetic.writer")  # the writer process's command (tests swap it)


def _write_in_child(folder: str, params: dict, timeout_s: float, root: str) -> None:
    """Runs :func:`_write` in a fresh writer process, allowing each video (and then the annotations) ``timeout_s``.

    Raises TimeoutError naming what hung (the process is killed), or RuntimeError with the writer's error."""
    receive, send = os.pipe()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
    try:
        writer = subprocess.Popen([*WRITER, folder, str(send)], stdin=subprocess.PIPE, pass_fds=(send,), env=env)
    except BaseException:
        os.close(receive)
        raise
    finally:
        os.close(send)
    total = params["num_videos"]
    try:
        try:
            writer.stdin.write(json.dumps(params).encode())
            writer.stdin.close()
        except BrokenPipeError:  # it died at once: said below, with its exit code
            pass
        lines = _lines(receive, timeout_s)
        for step in range(total + 1):
            what = f"video {step + 1} of {total}" if step < total else "the annotation files"
            message = next(lines)
            if message is None:
                raise TimeoutError(
                    f"synthetic: writing {what} of {root} took more than {timeout_s:g} s (the encoder hung?); "
                    "the writer process was killed and nothing was kept"
                )
            if message == "":
                raise RuntimeError(
                    f"synthetic: the writer process died (exit code {writer.wait(5)}) writing {what} of {root}"
                )
            if message != "done":
                raise RuntimeError(f"synthetic: writing {what} of {root} failed: {message}")
        with contextlib.suppress(subprocess.TimeoutExpired):  # everything is written: a writer stuck at its exit
            writer.wait(timeout_s)  # is killed below
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait()
        os.close(receive)


def _lines(fd: int, timeout_s: float) -> Iterator[str | None]:
    """The lines read from pipe ``fd``; None when none comes within ``timeout_s``, "" at its end."""
    buffer = b""
    poller = select.poll()  # not select.select, which takes no descriptor numbered 1024 or above
    poller.register(fd, select.POLLIN)
    while True:
        while b"\n" not in buffer:
            if not poller.poll(min(int(timeout_s * 1000), 2**31 - 1)):  # poll takes milliseconds as a C int
                yield None
                return
            chunk = os.read(fd, 4096)
            if not chunk:
                yield ""
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line.decode(errors="replace")


def _write(folder: str, params: dict, done: Callable[[], None] = lambda: None) -> None:
    """Writes the videos and then the annotation files, calling ``done()`` after each video and at the end."""
    os.makedirs(os.path.join(folder, "videos"))
    width = int(round(params["size"] * 4 / 3 / 2)) * 2
    splits: dict[str, list] = {"train": [], "validation": []}
    for i in range(params["num_videos"]):
        entry = _write_video(folder, i, params, width)
        splits["validation" if is_validation(i, params["num_videos"], params["num_classes"]) else "train"].append(entry)
        done()
    labels = {t.replace("[", "").replace("]", ""): str(k) for k, t in enumerate(TEMPLATES[: params["num_classes"]])}
    for name, content in [("labels", labels), *splits.items(), ("synthetic", params)]:
        with open(os.path.join(folder, f"{name}.json"), "w") as f:
            json.dump(content, f, indent=1)
    done()


def is_validation(i: int, num_videos: int, num_classes: int) -> bool:
    """The last fifth (at least one) of each class's videos are for validation."""
    per_class = len(range(i % num_classes, num_videos, num_classes))
    return i // num_classes >= per_class - max(1, round(per_class / 5))


def _write_video(folder: str, i: int, params: dict, width: int) -> dict:
    rng = np.random.default_rng([params["seed"], i])
    label, height = i % params["num_classes"], params["size"]
    radius = float(rng.uniform(0.06, 0.22) * height)
    if label == 4:
        radius = min(radius, 0.12 * height)
    count = 2 if label in (7, 8) else 1
    objects = [(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))) for _ in range(count)]
    num_frames = int(rng.integers(params["min_frames"], params["max_frames"] + 1))
    duration = int(rng.uniform(0.25, 0.9) * num_frames)
    start = int(rng.integers(0, num_frames - duration + 1))
    action = sample_action(label, width, height, radius, rng)
    frames = render_clip(
        action,
        radius,
        [(COLOURS[c], s) for c, s in objects],
        num_frames,
        (start, start + duration),
        height,
        width,
        rng,
        params.get("clutter", 1.0),
    )
    vid = str(i + 1)
    write_mp4(os.path.join(folder, "videos", f"{vid}.mp4"), frames, FPS)
    names = [f"{c} {s}" for c, s in objects]
    template = TEMPLATES[label]
    text = template
    for name in names:
        text = text.replace("[something]", name, 1)
    return {"id": vid, "label": text.lower(), "template": template, "placeholders": names}


def write_mp4(path: str, frames: np.ndarray, fps: int = FPS, codec: str = "libx264") -> None:
    """Encodes uint8 frames (N, H, W, 3), H and W even, into a video file with PyAV."""
    import av

    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "20"}
        elif codec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
