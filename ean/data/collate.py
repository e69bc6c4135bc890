"""Batches of clips that keep the clips' memory layout.

Clips leave the pipeline in the readers' channels-last layout (the colour channel innermost in memory).
torch's ``default_collate`` stacks them into a new contiguous batch, which costs the DataLoader worker a
transposing copy: about twice the time of a plain copy for dense 8 x 5 clips here (benchmarks/RESULTS.md).
:func:`collate_clips` copies each clip as it lies (into shared memory in a worker, as ``default_collate``
does) and keeps its strides; :func:`ean.data.normalize_clips` then makes the network's contiguous float input
on the device from any layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import default_collate, get_worker_info


def is_dense(tensor: torch.Tensor) -> bool:
    """Whether the tensor's elements fill its storage span without gaps or overlaps, in some order of dims."""
    expected = 1
    for size, stride in sorted(zip(tensor.shape, tensor.stride(), strict=True), key=lambda d: d[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def stack_as_laid_out(tensors: Sequence[torch.Tensor], shared: bool | None = None) -> torch.Tensor:
    """``torch.stack(tensors)`` whose items keep the layout (strides) of the inputs.

    Args:
        tensors: equally shaped tensors; if their strides differ or leave gaps, this is ``torch.stack``.
        shared: put the batch in shared memory (None: when called in a DataLoader worker).

    Returns:
        (B, *shape) tensor with strides (numel, *tensors[0].stride()).
    """
    first = tensors[0]
    if not is_dense(first) or any(t.shape != first.shape or t.stride() != first.stride() for t in tensors):
        return torch.stack(list(tensors))
    nbytes = first.numel() * first.element_size() * len(tensors)
    in_worker = get_worker_info() is not None if shared is None else shared
    storage = torch.UntypedStorage._new_shared(nbytes) if in_worker else torch.UntypedStorage(nbytes)
    batch = first.new_empty(0).set_(storage, 0, (len(tensors), *first.shape), (first.numel(), *first.stride()))
    for row, tensor in zip(batch, tensors, strict=True):
        row.copy_(tensor)
    return batch


def collate_clips(samples: Sequence[tuple]) -> list:
    """``default_collate`` of ``(clip, label, index)`` samples, with the clips stacked as they lie in memory.

    Returns:
        [clips (B, ...) with the clips' strides, labels (B,), indices (B,)].
    """
    clips, *rest = zip(*samples, strict=True)
    return [stack_as_laid_out(clips), *(default_collate(list(column)) for column in rest)]
