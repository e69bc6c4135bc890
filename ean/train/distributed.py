"""torch.distributed helpers: rank and world size, reductions, gathers, the DDP wrapper.

Everything here also works without a process group (one process): reductions return their input, gathers
return a one-element list. ``ean`` never starts a process group itself; its caller does (Ray Train's
TorchTrainer, ``torchrun``, or a test with ``torch.multiprocessing``), with gloo on CPU or nccl on CUDA.
Collectives on nccl need CUDA tensors: every helper moves its tensor to ``device`` and back.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def is_distributed() -> bool:
    """Whether an initialised process group has more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Processes in the group (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this is rank 0: the process that writes checkpoints and scores and calls the reporter."""
    return rank() == 0


def _collective_device(device: torch.device) -> torch.device:
    return device if dist.is_initialized() and dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce(values: torch.Tensor, device: torch.device, op: str = "sum") -> torch.Tensor:
    """Element-wise sum (or ``"max"``) of ``values`` over the ranks; ``values`` itself without a group.

    Args:
        values: any shape; float64 keeps sums of many float32 losses exact enough to compare runs.
        device: the training device (used for nccl).
        op: ``"sum"`` or ``"max"``.
    """
    if not is_distributed():
        return values
    work = values.to(_collective_device(device))
    dist.all_reduce(work, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return work.to(values.device)


def all_gather_rows(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Concatenates every rank's (n, ...) tensor along dim 0, rank by rank (n may differ between ranks).

    Returns:
        (sum of n over ranks, ...) on ``values``'s device; ``values`` itself without a group.
    """
    if not is_distributed():
        return values
    where = _collective_device(device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=where) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([values.shape[0]], dtype=torch.int64, device=where))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *values.shape[1:]), dtype=values.dtype, device=where)
    padded[: values.shape[0]] = values.to(where)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    rows = [part[: int(size.item())] for part, size in zip(parts, sizes, strict=True)]
    return torch.cat(rows).to(values.device)


def all_gather_stacked(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Every rank's tensor of one shape, stacked in rank order: (W, ...); ``values[None]`` without a group."""
    if not is_distributed():
        return values[None]
    work = values.to(_collective_device(device))
    parts = [torch.empty_like(work) for _ in range(world_size())]
    dist.all_gather(parts, work)
    return torch.stack(parts).to(values.device)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order (``[obj]`` without a group)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Waits for every rank (a no-op without a group)."""
    if is_distributed():
        dist.barrier()


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """The model in ``DistributedDataParallel`` under a process group; the model itself otherwise."""
    if not is_distributed():
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)
