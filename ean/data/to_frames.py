"""Convert a video dataset into JPEG frame folders that the same dataset class then reads.

    python -m ean.data.to_frames --dataset something_v2 --root /data/sthv2 [--out /data/sthv2/frames]
        [--short-side 256] [--quality 90] [--workers 4]

Every video of the train and val lists is decoded once, sequentially (PyAV), shrunk to the short side
(frames already smaller keep their size, upscaling would only cost disk and decoding; 0: keep every size),
and written as ``<out>/<path relative to root, without extension>/00001.jpg, ...``.
Each folder is written under a temporary name and renamed when complete, so an interrupted run resumes
where it stopped (finished folders are skipped). Then read the frames with the data config keys
``media: frames`` (and ``frames_root: <out>`` when ``--out`` is not ``<root>/frames``). Sparse clips then load
4-7x faster than from webm; dense 5-frame clips only 1.2-2.3x, as a video decodes consecutive frames about
as cheaply as JPEGs (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F
from PIL import Image

from ean.data.builder import build_dataset
from ean.data.cli_common import Progress, add_dataset_arguments, data_config
from ean.data.errors import DataError
from ean.data.records import frames_path


def resize_short_side(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 3, H', W') with min(H', W') = short_side (antialiased) if the frames are larger;
    smaller frames, and any with ``short_side`` 0, keep their size."""
    height, width = frames.shape[-2:]
    if short_side <= 0 or min(height, width) <= short_side:
        return frames
    scale = short_side / min(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)


def decode_all(path: str) -> torch.Tensor:
    """Every frame of a video, decoded sequentially with PyAV: uint8 (N, 3, H, W)."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    if not frames:
        raise ValueError("no frames decoded")
    return torch.stack(frames).permute(0, 3, 1, 2)


def convert_video(path: str, out_dir: str, short_side: int = 256, quality: int = 90) -> str | None:
    """Writes the frames of one video into ``out_dir``; returns None, or why the video could not be converted."""
    if os.path.isdir(out_dir):
        return None
    torch.set_num_threads(1)
    scratch = f"{out_dir}.tmp-{os.getpid()}"
    try:
        frames = resize_short_side(decode_all(path), short_side).permute(0, 2, 3, 1).numpy()
        os.makedirs(scratch, exist_ok=True)
        for i, frame in enumerate(frames, 1):
            Image.fromarray(frame).save(os.path.join(scratch, f"{i:05d}.jpg"), quality=quality)
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
        "--short-side", type=int, default=256, help="shrink larger frames to this short side (0: keep sizes)"
    )
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPU count)")
    return parser.parse_args(argv)


def jobs(args: argparse.Namespace, out: str) -> list[tuple[str, str]]:
    """(video path, frame folder) of every video of the chosen splits, without duplicates."""
    pairs = {}
    for split in args.splits:
        dataset = build_dataset(data_config(args, media="video", decode_timeout_s=0), split)
        for record in dataset.records:
            if record.media == "video":
                pairs[record.path] = frames_path(record.path, args.root, out)
    return sorted(pairs.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or os.path.join(args.root, "frames")
    try:
        todo = jobs(args, out)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress, failed = Progress(len(todo), f"to_frames -> {out}"), {}
    with ProcessPoolExecutor(max(args.workers, 1)) as pool:
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
