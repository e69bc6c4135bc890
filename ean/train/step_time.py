"""How long one training step of a config takes on a device: the step timed as fit runs it, on random clips.

The model is built with random weights (no file is read) and trained by ``train_epoch`` itself (normalisation
on the device, autocast, gradient clipping, the optimizer and its schedule) on uint8 clips of the config's
shape, so the time is the training step's, without data loading. One warm-up step first (kernel selection,
allocator); then ``steps`` optimizer steps are timed, at one or two sizes of micro-batch (``step_seconds``).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ean.models import build_model
from ean.profile import input_shape, without_weights
from ean.train.config import amp_dtype, device_batch, resolve_device, resolve_trainer_config
from ean.train.loop import train_epoch
from ean.train.optim import build_optimizer, build_scheduler
from ean.train.runtime import make_scaler, prepare_model, run_settings


def random_batches(config: dict[str, Any], batch: int, count: int, device: torch.device) -> list[tuple]:
    """``count`` batches of ``batch`` random uint8 clips (B, T, L, 3, S, S) with labels, on ``device``."""
    shape = input_shape(config["model"])[1:]
    classes = int(config["model"].get("num_classes", 174))
    generator = torch.Generator().manual_seed(0)
    return [
        (
            torch.randint(0, 256, (batch, *shape), dtype=torch.uint8, generator=generator).to(device),
            torch.randint(0, classes, (batch,), generator=generator).to(device),
            torch.arange(batch),
        )
        for _ in range(count)
    ]


def step_seconds(
    config: dict[str, Any],
    steps: int = 2,
    devices: int = 1,
    device: str | None = None,
    clips: int | None = None,
    budget_s: float = 2.0,
) -> float:
    """Seconds per optimizer step (one device's share of the global batch, accumulation included) of the
    training ``config`` describes, on ``device`` (default: the config's trainer device, else CUDA when there is
    one, else the CPU).

    A micro-batch is timed at a time (forward, backward and an optimizer update), each size the fastest of
    ``steps`` after a warm-up (the least disturbed by other work on the machine), then the update alone; a step
    is the micro-batch's time without its update x accumulation, plus one update (a step updates the weights
    once, whatever its micro-batches).

    Args:
        config: a resolved trial config (``model``, ``trainer``; weights are not loaded).
        steps: micro-batches timed after one warm-up micro-batch, for each size timed.
        devices: the devices that share the global batch (sets the per-device batch and accumulation).
        device: ``"cpu"``, ``"cuda"``...; None for the trainer's choice.
        clips: time micro-batches of this many clips first instead of the per-device batch (a CPU's time grows
            about linearly with the batch; a GPU's does not: leave it None). Then a larger one, as many clips as
            ``budget_s`` holds at that pace (at least twice as many, at most the per-device batch), and the time
            of the per-device batch is read off the line through the two (a fixed cost per micro-batch plus a
            cost per clip: a small network's fixed cost is most of its time).
        budget_s: how long a micro-batch of the larger size may take, about.
    """
    trainer = resolve_trainer_config(config)
    if device is not None:
        trainer["device"] = device
    target = resolve_device(trainer)
    per_device, accumulation = device_batch(trainer, devices)
    small = min(clips or per_device, per_device)
    model_cfg = without_weights(config["model"])  # random weights (the same work), no file read, no box cache
    with run_settings(trainer, target):
        model = prepare_model(build_model(model_cfg), trainer, target, distributed=False)
        optimizer = build_optimizer(model, trainer)
        scheduler = build_scheduler(optimizer, trainer, 2 * (steps + 1))
        dtype = amp_dtype(trainer, target)
        options = {"scaler": make_scaler(target, dtype), "amp_dtype": dtype, "clip_grad": trainer["clip_grad"]}
        options["batchnorm"] = trainer["batchnorm"]
        config = {**config, "model": model_cfg}

        def micro_batch_seconds(size: int) -> float:
            times = []
            for batch in random_batches(config, size, steps + 1, target):  # the first one warms up
                start = time.perf_counter()
                train_epoch(model, [batch], optimizer, scheduler, target, epoch=1, **options)
                _synchronize(target)
                times.append(time.perf_counter() - start)
            return min(times[1:])

        timed = {small: micro_batch_seconds(small)}
        if small < per_device:
            pace = max(timed[small], 1e-9) / small  # seconds per clip, at most (the fixed cost included)
            large = min(per_device, max(2 * small, int(budget_s / pace)))
            timed[large] = micro_batch_seconds(large)
        update = _update_seconds(model, optimizer, steps, target)
    return max(through(timed, per_device) - update, 0.0) * accumulation + update


def through(timed: dict[int, float], size: int) -> float:
    """The time of a micro-batch of ``size`` clips on the line through the timed sizes (``{clips: seconds}``, one
    or two): a fixed cost plus a cost per clip, neither negative; one size: its time scaled with the clips."""
    if len(timed) == 1:
        ((clips, seconds),) = timed.items()
        return seconds * size / clips
    (n1, t1), (n2, t2) = sorted(timed.items())
    per_clip = max(t2 - t1, 0.0) / (n2 - n1)
    return max(t1 - per_clip * n1, 0.0) + per_clip * size


def _update_seconds(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int, device: torch.device
) -> float:
    """The optimizer's update alone, the fastest of ``steps`` after a warm-up (every trainable weight given a
    gradient, as after a backward pass, so the update does its whole work)."""
    for param in model.parameters():
        if param.requires_grad and param.grad is None:
            param.grad = torch.zeros_like(param)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        optimizer.step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
