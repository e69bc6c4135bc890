"""Checkpoint files and random-number-generator states.

A checkpoint (``workdir/checkpoints/last.pt``) is a dict of tensors and plain data only, written atomically
(temporary file in the same folder, fsync, ``os.replace``) and loaded with ``torch.load(weights_only=True)``:

    format        CHECKPOINT_FORMAT
    epoch         epochs completed (the checkpoint sits at the end of this epoch)
    global_step   optimizer steps taken
    model         the network's state dict (unwrapped from DDP)
    optimizer     SGD state (momentum buffers)
    schedule      the LambdaLR state (its factor's plain parameters included)
    scaler        GradScaler state ({} unless fp16)
    rng           one entry per rank (``capture_rng``): torch, CUDA, numpy and Python generators (the
                  training order and augmentation need none: functions of the seed and the epoch)
    history       the metrics reported for each completed epoch
    config        the resolved config as JSON (a resumed run must match it, see ``fit``)
    world_size    ranks that trained
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ean.files_write import atomic_path

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Writes ``state`` to ``path`` atomically: a reader sees the old file or the new one, never a part."""
    with atomic_path(path, durable=True) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint onto the CPU with ``weights_only=True`` (no code runs while loading)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not an ean.train checkpoint of format {CHECKPOINT_FORMAT} (found {found!r})")
    return state


def capture_rng() -> dict[str, Any]:
    """This process's generator states as plain data (a training loader has none: its epochs are functions of
    the seed and the epoch, see ``ean.data.global_batches``)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Sets this process's generators to a ``capture_rng`` state (an older checkpoint's loader states, from
    before ``ean.data.global_batches``, are not used)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    keys = np_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, np_state["pos"], np_state["has_gauss"], np_state["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
