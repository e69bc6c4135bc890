"""Convert a video dataset into JPEG frame folders that the same dataset class then reads.

    python -m ean.data.to_frames --dataset something_v2 --root /data/sthv2 [--out /data/sthv2/frames]
        [--short-side 256] [--quality 90] [--workers 4]

Every video of the train and val lists is decoded once, sequentially (PyAV), frame by frame, shrunk to the
short side (frames already smaller keep their size, upscaling would only cost disk and decoding; 0: keep every
size), and written as ``<out>/<path relative to root, without extension>/00001.jpg, ...``.
Each folder is written under a temporary name and renamed when complete, so an interrupted run resumes
where it stopped (finished folders are skipped). ``<out>/.ean_frames.json`` records the short side and the
quality: a trial's data fingerprint includes it (frames made otherwise are other data), and a run resuming
into ``<out>`` with other settings is refused. Then read the frames with the data config keys
``media: frames`` (and ``frames_root: <out>`` when ``--out`` is not ``<root>/frames``). Sparse clips then load
much faster than from webm; dense 5-frame clips only a little, as a video decodes consecutive frames about
as cheaply as JPEGs (figures: benchmarks/RESULTS.md, section "Data loading").
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

from ean.data.builder import build_dataset, variant_options
from ean.data.cli_common import INPUT_ERRORS, Progress, add_dataset_arguments, data_config, number_in
from ean.data.errors import DataError
from ean.data.layout import FRAMES_MANIFEST, frames_manifest
from ean.data.records import frames_path
from ean.data.registry import DATASETS
from ean.files_write import write_text


@functools.cache
def scale_options() -> dict:
    """PyAV's options for scaling a frame in its RGB conversion: ffmpeg's bicubic scaler with full chroma
    resolution and accurate rounding (without them, scaled frames come out 1-3 grey levels darker than unscaled
    ones), on one thread. PyAV before 18 lacks these flags, before 17 the ``threads`` option: plain bicubic then."""
    import av
    from av.video.reformatter import Interpolation

    flags = [getattr(Interpolation, name, None) for name in ("ACCURATE_RND", "FULL_CHR_H_INT")]
    options = {"interpolation": Interpolation.BICUBIC, "threads": 1}
    if None not in flags:
        options["interpolation"] = Interpolation.BICUBIC | flags[0] | flags[1]
    try:
        av.VideoFrame(16, 16, "yuv420p").reformat(width=8, height=8, format="rgb24", **options)
    except TypeError:
        del options["threads"]
    return options


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(H', W') of frames shrunk to ``short_side`` (aspect kept); frames already smaller, and any with
    ``short_side`` 0, keep their size."""
    if short_side <= 0 or min(height, width) <= short_side:
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def convert_video(path: str, out_dir: str, short_side: int = 256, quality: int = 90) -> str | None:
    """Writes the frames of one video into ``out_dir``; returns None, or why the video could not be converted.

    Frame by frame (PyAV, sequentially): each is scaled in the pass that converts it to RGB (ffmpeg's bicubic
    scaler, see :func:`scale_options`) and written at once, so memory stays at a frame whatever the video's length and
    resolution."""
    import av

    if os.path.isdir(out_dir):
        return None
    scratch = f"{out_dir}.tmp-{os.getpid()}"
    try:
        options = scale_options()
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            count, stored = 0, None
            for count, frame in enumerate(container.decode(stream), 1):
                if stored is None:
                    stored = (frame.height, frame.width)
                    height, width = short_side_size(*stored, short_side)
                    os.makedirs(scratch, exist_ok=True)
                elif (frame.height, frame.width) != stored:
                    now, before = f"{frame.width}x{frame.height}", f"{stored[1]}x{stored[0]}"
                    raise ValueError(f"frame size changes mid-stream: frame {count} is {now}, earlier ones {before}")
                image = frame.to_image(width=width, height=height, **options)
                image.save(os.path.join(scratch, f"{count:05d}.jpg"), quality=quality)
        if count == 0:
            raise ValueError("no frames decoded")
        os.rename(scratch, out_dir)
    except Exception as e:  # any decode or write failure of this one video
        shutil.rmtree(scratch, ignore_errors=True)
        return f"{type(e).__name__}: {e}"
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ean.data.to_frames", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataset_arguments(parser)
    parser.add_argument("--out", help="frames root (default <root>/frames)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"])
    parser.add_argument(
        "--short-side",
        type=number_in(int, 0),
        default=256,
        help="shrink larger frames to this short side (default 256; 0: keep sizes)",
    )
    parser.add_argument("--quality", type=number_in(int, 1, 100), default=90, help="JPEG quality, 1-100 (default 90)")
    parser.add_argument(
        "--workers", type=number_in(int, 1), default=os.cpu_count() or 1, help="processes (default: CPU count)"
    )
    return parser.parse_args(argv)


def convertible() -> list[str]:
    """The datasets whose class reads frame folders (a ``media`` option): those to_frames converts."""
    return [name for name in DATASETS.names() if "media" in variant_options(name)]


def check_target(name: str, out: str) -> None:
    """Refuses, before anything is read or written, a dataset to_frames cannot convert, or an ``out`` that
    cannot be a folder.

    Raises:
        DataError: dataset ``name`` reads no frame folders, or ``out`` (or a folder above it) is a file.
        UnknownNameError: no dataset ``name``.
    """
    if "media" not in variant_options(name):
        raise DataError(
            f"dataset {name!r} cannot be converted to frames (its class reads no frame folders: no 'media' "
            f"option); to_frames converts: {', '.join(convertible())}"
        )
    path = os.path.abspath(out)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise DataError(f"--out {out}: {path} is a file; the frames go into a folder (give another --out)")


def jobs(args: argparse.Namespace, out: str) -> list[tuple[str, str]]:
    """(video path, frame folder) of every video of the chosen splits, without duplicates."""
    pairs = {}
    for split in args.splits:
        dataset = build_dataset(data_config(args, media="video", decode_timeout_s=0), split)
        for record in dataset.records:
            if record.media == "video":
                pairs[record.path] = frames_path(record.path, args.root, out)
    return sorted(pairs.items())


def claim(out: str, made: dict) -> None:
    """Writes how the frames under ``out`` are made (``FRAMES_MANIFEST``; a trial's data fingerprint includes
    it, so frames made otherwise name other data), or checks a run resuming into ``out`` makes them alike.

    Raises:
        DataError: ``out`` holds frames made otherwise (or, without a manifest, frames of unknown making).
    """
    have = frames_manifest(out)
    if have is not None and have != made:
        raise DataError(
            f"the frames under {out} were made with {_flags(have)}, not {_flags(made)}: resume with the same "
            "settings, or write these frames to another --out"
        )
    if have is None and os.path.isdir(out) and any(not name.startswith(".") for name in os.listdir(out)):
        raise DataError(
            f"{out} holds frame folders without {FRAMES_MANIFEST} (how they were made is unknown): write these "
            f"frames to another --out, or, if they were made with {_flags(made)}, write that file there as "
            f"{json.dumps(made)}"
        )
    if have is None:
        write_text(os.path.join(out, FRAMES_MANIFEST), json.dumps(made))


def _flags(made: dict) -> str:
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in sorted(made.items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or os.path.join(args.root, "frames")
    try:
        check_target(args.dataset, out)
        todo = jobs(args, out)
        claim(out, {"short_side": args.short_side, "quality": args.quality})
    except INPUT_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress, failed = Progress(len(todo), f"to_frames -> {out}"), {}
    with ProcessPoolExecutor(args.workers) as pool:
        paths, folders = [p for p, _ in todo], [f for _, f in todo]
        results = pool.map(convert_video, paths, folders, [args.short_side] * len(todo), [args.quality] * len(todo))
        for done, ((path, _), error) in enumerate(zip(todo, results, strict=True), 1):
            if error:
                failed[path] = error
            progress.update(done, f", {len(failed)} failed")
    for path, reason in failed.items():
        print(f"{path}\t{reason}")
    print(f"{len(todo) - len(failed)} of {len(todo)} videos are frame folders under {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
