"""Training-step time of EAN against a plain ResNet-50 TSN on the same input, measured in one run.

Forward + backward in train mode, two clips of 8 segments at 224 x 224, 2 CPU threads by default;
printed as ratios to the ResNet-50 TSN measured alongside: the models run round-robin, each round's time of a
model is divided by the reference's time in the same round (a slow spell of the machine then slows both), and
the median of these paired ratios is printed with its distribution-free 95% interval (order statistics of the
rounds; ``--repeats`` 6 or more). Also
measured: torchvision's own ``resnet50`` with TSN's consensus (the same reference, built by torchvision), and
the ResNet-50 TSN and EAN with channels-last weights (``ean.train.runtime.to_channels_last``: every
convolution then runs channels-last, a layout the plain TSN does not reach by itself on CPU).
On a CUDA device (``--device cuda``) it also measures throughput in clips/s with bf16 autocast and
channels_last.

    python benchmarks/model_step.py                 # CPU, 2 threads
    python benchmarks/model_step.py --device cuda   # GPU: clips/s
    python benchmarks/model_step.py --parts         # where EAN's time goes: its parts added one at a time
    python benchmarks/model_step.py --ops           # also one profiled step each: operators' time and calls

Figures: benchmarks/RESULTS.md, section "Model training step" (written there by hand: this script only prints).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from ean.models import build_model, frames_per_segment
from ean.train.runtime import to_channels_last

TSN = {"block": "none", "regions": "none", "temporal_conv": False, "motion_excitation": False}
#: A ``build_model`` config, or ``TORCHVISION`` for torchvision's ``resnet50`` with TSN's consensus.
TORCHVISION = "torchvision"
MODELS = {
    "ResNet-50 TSN (reference)": TSN,
    "torchvision resnet50, TSN consensus": TORCHVISION,
    "ResNet baseline (ME + temporal conv)": {"block": "none", "regions": "none"},
    "EAN 8F RGB": {},
    "EAN 8F RGB+LMC": {"modality": "rgb_lmc"},
}
#: Rows measured with channels-last weights as well (on CPU; on a GPU every model is channels-last).
CHANNELS_LAST_ROWS = ("ResNet-50 TSN (reference)", "EAN 8F RGB+LMC")

#: ``--parts``: EAN 8F RGB+LMC's parts added to the ResNet baseline one at a time (ratios to the first).
PARTS = {
    "ResNet baseline (reference)": {"block": "none", "regions": "none"},
    "+ SOI-Tr (saliency regions)": {"block": "none"},
    "+ EAB, identity fusion": {"regions": "none", "fusion": "identity"},
    "+ EAB (dynamic fusion: ESP-Net)": {"regions": "none"},
    "EAN 8F RGB (EAB + SOI-Tr)": {},
    "EAN 8F RGB+LMC": {"modality": "rgb_lmc"},
}


class TorchvisionTSN(torch.nn.Module):
    """torchvision's ``resnet50`` on every frame, its scores averaged over the segments (TSN's consensus).

    Shapes: (N, T, 1, 3, H, W) -> (N, K).
    """

    def __init__(self, num_classes: int):
        super().__init__()
        from torchvision.models import resnet50

        self.net = resnet50(num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        return self.net(x.flatten(0, 2)).view(n, t, -1).mean(dim=1)


def make_step(config: dict | str, clips: int, size: int, device: str, amp: bool, channels_last: bool = False):
    if config == TORCHVISION:
        model, frames = TorchvisionTSN(174).to(device).train(), 1
    else:
        config = {**config, "input_size": size}
        model, frames = build_model(config).to(device).train(), frames_per_segment(config)
    if amp or channels_last:
        model = to_channels_last(model)  # 4-D weights only: the EAB has 3-D convolutions
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(clips, 8, frames, 3, size, size, device=device)
    y = torch.randint(0, 174, (clips,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def timed(step, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """The distribution-free interval of the median of ``values`` at ``level`` (order statistics: the k-th
    smallest and k-th largest, k the largest with P(Binomial(n, 1/2) < k) <= (1 - level) / 2), or None when
    there are too few values for one."""
    n, ordered = len(values), sorted(values)
    tail, k = 0.0, 0
    while tail + math.comb(n, k) / 2**n <= (1 - level) / 2:
        tail += math.comb(n, k) / 2**n
        k += 1
    return (ordered[k - 1], ordered[n - k]) if k else None


def paired_ratios(times: dict[str, list[float]]) -> dict[str, list[float]]:
    """Each model's time in each round divided by the first model's (the reference's) in the same round."""
    ref = next(iter(times.values()))
    return {name: [t / r for t, r in zip(values, ref, strict=True)] for name, values in times.items()}


def operator_totals(step) -> tuple[float, int]:
    """One step under ``torch.profiler``: the summed self time of every operator (s) and the aten calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    return sum(e.self_cpu_time_total for e in events) / 1e6, sum(e.count for e in events if e.key.startswith("aten::"))


def _interval(ratios: list[float]) -> str:
    bounds = median_interval(ratios)
    return f"[{bounds[0]:.2f}, {bounds[1]:.2f}]" if bounds else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", type=int, default=None, help="clips per step (default: 2 on CPU, 16 on GPU)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="time EAN's parts over the ResNet baseline instead")
    parser.add_argument(
        "--ops", action="store_true", help="also profile one step of each: operators' summed self time, aten calls"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gpu = args.device.startswith("cuda")
    clips = args.clips or (16 if gpu else 2)
    if gpu:
        torch.backends.cudnn.benchmark = True
    models = PARTS if args.parts else MODELS
    steps = {name: make_step(cfg, clips, args.size, args.device, amp=gpu) for name, cfg in models.items()}
    if not args.parts and not gpu:
        for name in CHANNELS_LAST_ROWS:
            steps[f"{name.removesuffix(' (reference)')}, channels-last"] = make_step(
                MODELS[name], clips, args.size, args.device, amp=False, channels_last=True
            )
    for step in steps.values():  # warm-up
        step()
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            times[name].append(timed(step, args.device))
    mode = "bf16 autocast + channels_last" if gpu else f"fp32, {args.threads} threads"
    print(f"train step (forward+backward+SGD), {clips} clips x 8 x {args.size}^2, {args.device}, {mode}")
    print(f"{args.repeats} rounds; ratio: median of the per-round ratios to the first row, with its 95% interval")
    print(f"{'model':44} {'s/step':>8} {'ratio':>7} {'95% interval':>15} {'clips/s':>8}")
    for name, ratios in paired_ratios(times).items():
        median, ratio = statistics.median(times[name]), statistics.median(ratios)
        print(f"{name:44} {median:8.3f} {ratio:6.2f}x {_interval(ratios):>15} {clips / median:8.1f}")
    layouts = [n for n in times if n.endswith(", channels-last")]
    if len(layouts) == 2:
        ratios = paired_ratios({n: times[n] for n in layouts})[layouts[1]]
        print(
            f"\nchannels-last against channels-last: {layouts[1]} / {layouts[0]} = {statistics.median(ratios):.2f}x "
            f"{_interval(ratios)}"
        )
    if args.ops:
        totals = {name: operator_totals(step) for name, step in steps.items()}
        first = next(iter(totals.values()))
        print(f"\none profiled step each: {'model':31} {'op self s':>9} {'ratio':>7} {'aten calls':>10} {'ratio':>7}")
        for name, (seconds, calls) in totals.items():
            print(f"{name:54} {seconds:9.3f} {seconds / first[0]:6.2f}x {calls:10d} {calls / first[1]:6.2f}x")


if __name__ == "__main__":
    main()
