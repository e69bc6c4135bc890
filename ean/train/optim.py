"""Optimizer and learning-rate schedule: SGD with momentum; step decay or cosine, with optional warm-up.

The schedule is a ``LambdaLR`` stepped once per optimizer step. Its factor is a picklable
:class:`LRFactor` of plain numbers, so ``scheduler.state_dict()`` holds only plain data and loads with
``torch.load(weights_only=True)``.

Factor at global step ``s`` (epoch ``e = s // steps_per_epoch``, fractional epoch ``t = s / steps_per_epoch``):

    warm-up (s < W = warmup_epochs * steps_per_epoch):  (s + 1) / W
    step:    lr_gamma ** (number of lr_steps <= e)
    cosine:  0.5 * (1 + cos(pi * (t - warmup_epochs) / (epochs - warmup_epochs)))
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, policy: str) -> list[dict[str, Any]]:
    """The optimizer's parameter groups; the first holds the weights (its lr is the one reported).

    ``"tsn"``, the authors' policy: convolution and linear weights (and any other parameter, e.g. the SOI-Tr's
    positional embedding) lr x1 with decay; convolution and linear biases lr x2 without decay; normalisation
    scales and shifts lr x1 without decay, and so the parameters a module names in ``NORM_PARAMETERS`` (those
    standing for a normalisation layer's, e.g. the SOI-Tr's final scale and shift, the authors' BatchNorm1d).
    ``"uniform"``: one group, lr x1 and decay for every parameter.
    """
    weights, biases, norms, seen = [], [], [], set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if policy == "uniform":
                weights.append(param)
            elif isinstance(module, NORMS) or name in getattr(module, "NORM_PARAMETERS", ()):
                norms.append(param)
            elif isinstance(module, WEIGHTED) and name == "bias":
                biases.append(param)
            else:
                weights.append(param)
    groups = [
        {"params": weights, "lr": lr, "weight_decay": weight_decay},
        {"params": biases, "lr": 2 * lr, "weight_decay": 0.0},
        {"params": norms, "lr": lr, "weight_decay": 0.0},
    ]
    return [g for i, g in enumerate(groups) if g["params"] or i == 0]


def _undecorated(method: Any) -> Any:
    """``method`` without the wrappers torch puts around it (for ``torch.compile``; ``step`` also gets the hook
    wrapper once any ``torch.optim.SGD`` exists): the function at the end of their ``__wrapped__`` chain."""
    return inspect.unwrap(method)


_SGD_STEP = _undecorated(torch.optim.SGD.step)


class SGD(torch.optim.SGD):
    """``torch.optim.SGD`` that does not import ``torch._dynamo``: the same update, bit for bit.

    torch wraps the optimizer's methods for ``torch.compile``: ``add_param_group`` (called by the
    constructor), ``zero_grad``, ``state_dict`` and ``load_state_dict`` in ``torch._disable_dynamo``, ``step`` in
    a grad-mode guard with graph breaks, and each wrapper imports ``torch._dynamo`` on its first call: 1.2-1.6 s
    of CPU in every one-device trial process on 2 cores, before its first step, for a compiler no trial uses
    (DDP's constructor imports it too). This class calls torch's own methods without those wrappers; ``step``
    runs in the grad mode the guard sets outside compilation (``defaults["differentiable"]``, False here). The
    state dict is torch's, so checkpoints load into either class.
    """

    add_param_group = _undecorated(torch.optim.Optimizer.add_param_group)
    zero_grad = _undecorated(torch.optim.Optimizer.zero_grad)
    state_dict = _undecorated(torch.optim.Optimizer.state_dict)
    load_state_dict = _undecorated(torch.optim.Optimizer.load_state_dict)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One SGD update of every parameter with a gradient (``torch.optim.SGD.step``)."""
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return _SGD_STEP(self, closure)


def build_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.SGD:
    """SGD with momentum over the model's trainable parameters, in the groups of ``cfg["param_groups"]``.

    Args:
        model: the network (or its DDP wrapper).
        cfg: a resolved trainer config (``lr``, ``momentum``, ``weight_decay``, ``param_groups``).
    """
    groups = parameter_groups(model, cfg["lr"], cfg["weight_decay"], cfg["param_groups"])
    return SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])


@dataclass
class LRFactor:
    """The multiplier of the base learning rate at a global step (see the module docstring).

    Attributes:
        schedule: ``"step"`` or ``"cosine"``.
        steps_per_epoch: optimizer steps in one epoch.
        epochs: epochs in the run (the cosine reaches 0 there).
        lr_steps: 0-based epochs from which one more ``lr_gamma`` applies (step schedule).
        lr_gamma: the step factor.
        warmup_epochs: epochs of linear warm-up (may be fractional).
    """

    schedule: str
    steps_per_epoch: int
    epochs: int
    lr_steps: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    warmup_epochs: float = 0.0

    def __call__(self, step: int) -> float:
        warmup_steps = self.warmup_epochs * self.steps_per_epoch
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if self.schedule == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1e-12)
            done = min((step / self.steps_per_epoch - self.warmup_epochs) / span, 1.0)
            return 0.5 * (1.0 + math.cos(math.pi * done))
        epoch = step // self.steps_per_epoch
        return self.lr_gamma ** sum(epoch >= s for s in self.lr_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: dict[str, Any], steps_per_epoch: int) -> LambdaLR:
    """The per-step schedule of a resolved trainer config.

    Args:
        optimizer: the optimizer whose learning rates it sets.
        cfg: a resolved trainer config (``schedule``, ``epochs``, ``lr_steps``, ``lr_gamma``, ``warmup_epochs``).
        steps_per_epoch: optimizer steps per epoch (``len(loader)``, capped by ``max_steps_per_epoch``).
    """
    factor = LRFactor(
        schedule=cfg["schedule"],
        steps_per_epoch=max(int(steps_per_epoch), 1),
        epochs=int(cfg["epochs"]),
        lr_steps=[int(s) for s in cfg["lr_steps"]],
        lr_gamma=float(cfg["lr_gamma"]),
        warmup_epochs=float(cfg["warmup_epochs"]),
    )
    return LambdaLR(optimizer, factor)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group (the weights': the base lr times the schedule)."""
    return float(optimizer.param_groups[0]["lr"])
