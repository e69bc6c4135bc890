"""Data-loading throughput of one worker: the whole ean.data pipeline against decoding alone, in one run.

Writes the same clips (240p and 360p, 2-6 s, 30 fps) as H.264 mp4, VP9 webm and JPEG frame folders (made by
``ean.data.to_frames`` with its defaults: quality 90, frames shrunk to a short side of 256), then measures
clips/s of one process (1 torch thread, 1 decoder thread, the heap tuned as in a DataLoader worker). The methods
take turns in blocks of ``--block`` reads (default 12: each clip 4 times), every method reading the same clips with
the same seeds, in an order that alternates from block to block, so slow drifts of this shared VM hit all alike.
A block is the steady state of a DataLoader worker, which reads clip after clip; ``--block 1`` interleaves the
methods clip by clip instead, which leaves every decoder process cold for its next clip (16 method-source
groups take turns): a cost that a worker, busy clip after clip, does not pay. Methods:

- decode alone: decord ``VideoReader`` + ``get_batch`` of exactly the indices the pipeline samples, to numpy
  without a copy (DLPack); and the same with decord resizing to 240x320 at decode (``width``/``height``);
  for frame folders, Pillow decoding the sampled JPEGs (the bound of any frame-folder pipeline);
- PyAV: sequential decode up to the last of those indices;
- pipeline: ``dataset[(index, seed)]`` of ``ean.data`` (open, sample, decode at the 240x320 working size,
  multi-scale crop + resize to 224, flip; uint8 out, as the DataLoader workers hand clips over: the training
  step normalises them on the device), 8 x 224 sparse and 8 x 5 dense, with the decoder in a killable process
  (the default, ``decode_timeout_s=30``) and in-process (``decode_timeout_s=0``); and, with the decoder
  process, resized after decode (``resize_at_decode=False``: frames decoded as stored, the crop cut from them
  and scaled to 224 in one step, as for short-side resizes);
- naive: decord, then a per-frame PIL resize / crop / flip / to-tensor / normalise (the TSN-style pipeline).

Ratios are printed against decode alone measured in the same run; ``--record`` writes the figures into
the "Data loading" section of benchmarks/RESULTS.md (other sections are kept).
Figures: benchmarks/RESULTS.md, section "Data loading" (and "Data loading, by hand" for ``--block 1`` and
``--untuned-heap`` against the defaults).

    python benchmarks/data_loading.py --record
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
import torch
from results_file import record_section

from ean.data import build_dataset
from ean.data.collate import collate_clips, stack_as_laid_out
from ean.data.readers.decord_core import as_numpy, open_decord
from ean.data.readers.heap import SWITCH, keep_freed_memory
from ean.data.synthetic.generate import write_mp4
from ean.data.synthetic.render import render_clip
from ean.data.synthetic.scenes import sample_action
from ean.data.to_frames import convert_video

SIZES = {"240p": (240, 426), "360p": (360, 640)}
SECONDS = (2, 4, 6)
FPS = 30
GPU_RATES = (50, 100, 200, 400)
COLUMNS = (
    "decode alone",
    "decord resized",
    "PyAV sequential",
    "pipeline",
    "pipeline in-process",
    "resized after",
    "naive PIL",
)


def write_clips(folder: str) -> dict[str, list[str]]:
    """The same clips as mp4, webm and frame folders: {"mp4 240p": [paths], ...}."""
    sets = defaultdict(list)
    for name, (h, w) in SIZES.items():
        for k, seconds in enumerate(SECONDS):
            rng = np.random.default_rng(k)
            n = seconds * FPS
            frames = render_clip(sample_action(k % 10, w, h, 0.1 * h, rng), 0.1 * h, [((200, 40, 40), "ball")],
                                 n, (n // 4, 3 * n // 4), h, w, rng)  # fmt: skip
            stem = os.path.join(folder, f"{name}_{seconds}s")
            write_mp4(stem + ".mp4", frames, FPS, "libx264")
            write_mp4(stem + ".webm", frames, FPS, "libvpx-vp9")
            convert_video(stem + ".mp4", stem)  # the to_frames defaults
            sets[f"mp4 {name}"].append(stem + ".mp4")
            sets[f"webm {name}"].append(stem + ".webm")
            sets[f"frames {name}"].append(stem)
    return sets


def make_dataset(folder: str, paths: list[str], dense: bool, timeout: float, resize_at_decode: bool = True):
    lines = [f"{os.path.relpath(p, folder)} {0} 0" for p in paths]
    list_path = os.path.join(folder, f"list_{abs(hash(tuple(paths)))}.txt")
    with open(list_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    cfg = {"dataset": "list_file", "root": folder, "train_list": list_path, "resize": [240, 320]}
    cfg.update(frames_per_segment=5 if dense else 1, decode_timeout_s=timeout, max_bad_fraction=0.0)
    cfg.update(resize_at_decode=resize_at_decode)
    return build_dataset(cfg, "train")


def sampled_indices(dataset, index: int, seed: int, num_frames: int) -> np.ndarray:
    """The indices ``dataset[(index, seed)]`` decodes (the same random stream)."""
    return dataset.sampler.train(num_frames, np.random.default_rng(seed))


def decode_alone(path: str, dataset, index: int, seed: int) -> None:
    """decord's fastest way to numpy: ``get_batch`` shared through DLPack, no copy (as the pipeline reads it)."""
    reader = open_decord(path, 1)
    as_numpy(reader.get_batch(np.unique(sampled_indices(dataset, index, seed, len(reader))).tolist()))


def decode_resized(path: str, dataset, index: int, seed: int) -> None:
    """decord resizing at decode to the 240x320 working size (its ``width``/``height`` arguments)."""
    import decord

    reader = decord.VideoReader(path, num_threads=1, width=320, height=240)
    as_numpy(reader.get_batch(np.unique(sampled_indices(dataset, index, seed, len(reader))).tolist()))


def pyav_sequential(path: str, dataset, index: int, seed: int, num_frames: int) -> None:
    import av

    wanted = set(np.unique(sampled_indices(dataset, index, seed, num_frames)).tolist())
    with av.open(path) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                frame.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break


def jpeg_alone(folder: str, dataset, index: int, seed: int, num_frames: int) -> None:
    """Pillow decoding the sampled frames of a frame folder to numpy, nothing else."""
    from ean.data.readers.frames import read_rgb

    for i in np.unique(sampled_indices(dataset, index, seed, num_frames)):
        read_rgb(os.path.join(folder, f"{i + 1:05d}.jpg"))


def naive_pil(path: str, dataset, index: int, seed: int) -> None:
    """decord, then per frame: PIL resize to 320x240, crop, resize to 224, flip, to tensor, normalise."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    reader = open_decord(path, 1)
    frames = reader.get_batch(sampled_indices(dataset, index, seed, len(reader)).reshape(-1).tolist()).asnumpy()
    out = []
    for frame in frames:
        image = Image.fromarray(frame).resize((320, 240), Image.BILINEAR).crop((20, 10, 230, 220))
        image = image.resize((224, 224), Image.BILINEAR).transpose(Image.FLIP_LEFT_RIGHT)
        out.append(TF.normalize(TF.to_tensor(image), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    torch.stack(out)


def methods_of(sets: dict[str, list[str]], folder: str, dense: bool, source: str) -> dict[str, object]:
    """The methods measured on one source: {column: fn(clip index, seed)}."""
    paths = sets[source]
    methods = {}
    for timeout, how in ((30.0, "pipeline"), (0.0, "pipeline in-process")):
        if not (source.startswith("frames") and timeout):  # frame folders never use the decoder process
            ds = make_dataset(folder, paths, dense, timeout)
            methods[how] = lambda i, s, ds=ds: ds[(i, s)]
    ds = make_dataset(folder, paths, dense, 0.0)
    if source.startswith("frames"):
        lengths = [len(os.listdir(p)) for p in paths]
        methods["decode alone"] = lambda i, s: jpeg_alone(paths[i], ds, i, s, lengths[i])
        return methods
    after = make_dataset(folder, paths, dense, 30.0, resize_at_decode=False)
    methods["resized after"] = lambda i, s: after[(i, s)]
    lengths = [len(open_decord(p, 1)) for p in paths]
    methods["decode alone"] = lambda i, s: decode_alone(paths[i], ds, i, s)
    methods["decord resized"] = lambda i, s: decode_resized(paths[i], ds, i, s)
    methods["PyAV sequential"] = lambda i, s: pyav_sequential(paths[i], ds, i, s, lengths[i])
    if not dense:
        methods["naive PIL"] = lambda i, s: naive_pil(paths[i], ds, i, s)
    return methods


def run(sets: dict[str, list[str]], folder: str, repeats: int, block: int) -> dict[tuple[str, str, str], float]:
    """clips/s of every (method, input, source). Per pass and source, the methods take turns in blocks of
    ``block`` reads (clip ``j % clips``, seed ``pass * 1000 + j``: the same clips and seeds for every method),
    in an order that alternates from block to block."""
    groups = {}
    for dense in (False, True):
        for source in sets:
            groups[("8x5 dense" if dense else "8x1 sparse", source)] = methods_of(sets, folder, dense, source)
    for methods in groups.values():  # warm-up: decoder processes, caches
        for method in methods.values():
            method(0, 0)
    totals, counts = defaultdict(float), defaultdict(int)
    for rep in range(repeats):
        for (tag, source), methods in groups.items():
            reads = block * math.ceil(len(sets[source]) / block)
            for first in range(0, reads, block):
                order = list(methods.items())
                for how, method in order[::-1] if (rep + first // block) % 2 else order:
                    for j in range(first, first + block):
                        start = time.perf_counter()
                        method(j % len(sets[source]), rep * 1000 + j)
                        totals[(how, tag, source)] += time.perf_counter() - start
                        counts[(how, tag, source)] += 1
    return {key: counts[key] / totals[key] for key in totals}


def loader_scaling(folder: str, paths: list[str], workers: int, batches: int = 6) -> float:
    """clips/s of a DataLoader with ``workers`` worker processes (batch 4, sparse, webm)."""
    ds = make_dataset(folder, paths * 12, dense=False, timeout=30.0)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers, shuffle=True, collate_fn=collate_clips)
    it = iter(loader)
    next(it)  # start the workers
    start = time.perf_counter()
    done = sum(next(it)[0].shape[0] for _ in range(batches))
    return done / (time.perf_counter() - start)


def contiguous_shared_stack(clips: list[torch.Tensor]) -> torch.Tensor:
    """What ``default_collate`` does with tensors in a DataLoader worker: a new contiguous batch in shared memory."""
    first = clips[0]
    storage = first._typed_storage()._new_shared(first.numel() * len(clips), device=first.device)
    return torch.stack(clips, 0, out=first.new(storage).resize_(len(clips), *first.shape))


def collate_costs(folder: str, paths: list[str], repeats: int = 10) -> tuple[float, float]:
    """ms to batch 8 dense clips in shared memory: default_collate's contiguous stack, then collate_clips'."""
    ds = make_dataset(folder, paths, dense=True, timeout=0.0)
    clips = [ds[(i % len(paths), i)][0] for i in range(8)]
    times = ([], [])
    for rep in range(repeats):
        for k in (0, 1) if rep % 2 else (1, 0):
            start = time.perf_counter()
            contiguous_shared_stack(clips) if k == 0 else stack_as_laid_out(clips, shared=True)
            times[k].append(time.perf_counter() - start)
    return tuple(1000 * float(np.median(t)) for t in times)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (without its --note)."""
    command = "python benchmarks/data_loading.py" + (" --untuned-heap" if args.untuned_heap else "")
    command += f" --repeats {args.repeats}" if args.repeats != 3 else ""
    command += f" --block {args.block}" if args.block != 12 else ""
    command += " --one-core" if args.one_core else ""
    return command + (" --record" if args.record else "")


def report(
    rates: dict,
    scaling: dict[int, float],
    collate_ms: tuple[float, float],
    args: argparse.Namespace,
    seconds: float,
    tuned: bool,
) -> str:
    command, repeats, block = command_line(args), args.repeats, args.block
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}"
    heap = "heap tuned as in DataLoader workers (`ean.data.readers.heap`)" if tuned else "glibc's default heap"
    heap += ", pinned to one core with its decoder processes" if args.one_core else ""
    lines = [
        f"Command: `{command}` ({seconds:.0f} s in all). Machine: {machine}; one process, 1 torch thread, "
        f"1 decoder thread, {heap}. Clips: {', '.join(SIZES)} at {FPS} fps, {'/'.join(map(str, SECONDS))} s, H.264 mp4 "
        "(libx264 defaults: one keyframe per clip), VP9 webm (realtime), and JPEG frame folders of the same clips "
        "made by `ean.data.to_frames` (quality 90, short side at most 256: 240p stays, 360p becomes 256p). "
        "Pipeline: decode at the 240x320 working size (decord's scaler), multi-scale crop + resize to 224, flip; "
        "resized after: frames decoded as stored, the crop cut from them and scaled in one step (decoder process); "
        "uint8 output (the training step normalises on the device, see `ean.data.normalize_clips`). "
        f"{repeats} passes; in each, per source, the "
        f"methods take turns in blocks of {block} reads of the same clips with the same seeds "
        + ("(a worker's steady state)." if block > 1 else "(interleaved clip by clip)."),
        "",
        "| input | source | decode alone | decord resized at decode | PyAV seq. | pipeline (decoder process) "
        "| pipeline (in-process) | pipeline, resized after decode | naive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for tag in ("8x1 sparse", "8x5 dense"):
        for source in sorted({k[2] for k in rates if k[1] == tag}):
            base = rates[("decode alone", tag, source)]
            cells = []
            for how in COLUMNS:
                r = rates.get((how, tag, source))
                cells.append("-" if r is None else f"{r:.1f} ({r / base:.2f}x)")
            lines.append(f"| {tag} | {source} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "clips/s of one worker (ratio to decoding alone the same indices: decord for videos, Pillow for JPEG frames).",
        "",
    ]
    lines += goal_lines(rates) + [""] + frames_lines(rates) + [""] + worker_lines(rates, scaling, args.one_core)
    lines += [
        "",
        f"Batching 8 dense mp4 240p clips in shared memory, as a DataLoader worker does: {collate_ms[0]:.1f} ms with "
        f"default_collate's contiguous batch (a transposing copy of the channels-last clips), {collate_ms[1]:.1f} ms "
        f"with `ean.data.collate.collate_clips` (a plain copy, the clips' layout kept): "
        f"{(collate_ms[0] - collate_ms[1]) / 8:.1f} ms less a clip.",
    ]
    return "\n".join(lines)


def goal_lines(rates: dict) -> list[str]:
    """The issue's goals against this run: pipeline >= 0.75x decode alone, frame folders >= 3x webm."""
    out = ["Goals (issue 4), this run:"]
    for tag in ("8x1 sparse", "8x5 dense"):
        for how in ("pipeline", "pipeline in-process"):
            ratios = [
                rates[(how, tag, src)] / rates[("decode alone", tag, src)]
                for src in (f"{c} {s}" for c in ("mp4", "webm") for s in SIZES)
            ]
            met = sum(r >= 0.75 for r in ratios)
            out.append(f"- {tag}, {how}: {min(ratios):.2f}-{max(ratios):.2f}x decode alone ({met}/4 sources >= 0.75x)")
    return out


def frames_lines(rates: dict) -> list[str]:
    """Frame folders against webm and mp4, and the bound: decoding the JPEGs alone against decoding the video."""
    out = []
    for tag in ("8x1 sparse", "8x5 dense"):
        for size in SIZES:
            frames = rates[("pipeline in-process", tag, f"frames {size}")]
            webm, mp4 = rates[("pipeline", tag, f"webm {size}")], rates[("pipeline", tag, f"mp4 {size}")]
            bound = rates[("decode alone", tag, f"frames {size}")] / rates[("decode alone", tag, f"webm {size}")]
            out.append(
                f"- {tag} {size}: frame folders {frames / webm:.1f}x the webm pipeline, {frames / mp4:.1f}x mp4; "
                f"decoding the JPEGs alone is {bound:.1f}x decoding the webm alone."
            )
    per_frame = {
        src: 1000 / rates[("decode alone", "8x5 dense", src)] / 40 for src in ("frames 240p", "webm 240p", "mp4 240p")
    }
    out.append(
        f"- Dense clips: per frame of a dense 240p clip, decoding its JPEG costs {per_frame['frames 240p']:.2f} ms, "
        f"decoding the video {per_frame['webm 240p']:.2f} ms (webm) and {per_frame['mp4 240p']:.2f} ms (mp4), all "
        "frames up to the last sampled one included: five consecutive video frames decode about as cheaply as five "
        "JPEGs, so frame folders pay off for sparse clips (random access, a seek per frame), not for dense ones."
    )
    return ["Frame folders against video (whole pipeline, default settings):", *out]


def worker_lines(rates: dict, scaling: dict[int, float], one_core: bool) -> list[str]:
    head = "| GPU consumes (clips/s) | " + " | ".join(map(str, GPU_RATES)) + " |"
    basis = (
        "the one-core rates above"
        if one_core
        else "the one-worker rates above (a worker may use more than one core: decord decodes in a thread of its "
        "own; `--one-core` measures per core)"
    )
    out = [f"Workers (one per core) to keep a GPU fed, 8x1 sparse pipeline, from {basis}:", "", head]
    out.append("|---|" + "---|" * len(GPU_RATES))
    for source in ("webm 240p", "mp4 360p", "frames 240p", "frames 360p"):
        how = "pipeline in-process" if source.startswith("frames") else "pipeline"
        r = rates[(how, "8x1 sparse", source)]
        out.append(f"| {source} ({r:.0f}/worker) | " + " | ".join(str(math.ceil(g / r)) for g in GPU_RATES) + " |")
    one, two = scaling[1], scaling[2]
    out += ["", f"DataLoader check (webm 240p, batch 4): 1 worker {one:.1f} clips/s, 2 workers {two:.1f} clips/s "
            f"({two / one:.2f}x on this 2-core machine, the training process sharing the cores)."]  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="passes over all methods and sources (default 3)")
    parser.add_argument("--block", type=int, default=12, help="reads of one method in a row (default 12; 1: per clip)")
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    parser.add_argument("--note", default="", help="a sentence recorded with the figures (e.g. machine load)")
    untuned_help = "glibc's default heap here and in the decoder processes (EAN_KEEP_FREED_MEMORY=0)"
    parser.add_argument("--untuned-heap", action="store_true", help=untuned_help)
    one_core_help = "measure on one core with the decoder processes, as when every core runs a worker"
    parser.add_argument("--one-core", action="store_true", help=one_core_help)
    args = parser.parse_args()
    if args.untuned_heap:
        os.environ[SWITCH] = "0"  # read by keep_freed_memory, here and in every decoder process started below
    torch.set_num_threads(1)
    tuned = keep_freed_memory()  # as in a DataLoader worker (ean.data.builder.seed_worker): every method runs here
    began = time.time()
    with tempfile.TemporaryDirectory(prefix="ean-bench-") as folder:
        sets = write_clips(folder)
        print(f"clips written in {time.time() - began:.1f} s", file=sys.stderr)
        cores = os.sched_getaffinity(0)
        if args.one_core:  # the decoder processes start in run() and inherit it
            os.sched_setaffinity(0, {min(cores)})
        rates = run(sets, folder, args.repeats, args.block)
        os.sched_setaffinity(0, cores)  # the DataLoader check below needs its cores
        scaling = {w: loader_scaling(folder, sets["webm 240p"], w) for w in (1, 2)}
        collate_ms = collate_costs(folder, sets["mp4 240p"])
    text = report(rates, scaling, collate_ms, args, time.time() - began, tuned)
    text += f"\n\nNote: {args.note}" if args.note else ""
    print(text)
    if args.record:
        record_section("data_loading", f"## Data loading (ean.data, issue 4)\n\n{text}")


if __name__ == "__main__":
    main()
