"""Loading ImageNet weights into the backbone by torchvision key names, with a report of what matched."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

_TORCHVISION_WEIGHTS = {
    "resnet18": "ResNet18_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights",
}


@dataclass
class LoadReport:
    """Which keys of a state dict went where.

    Attributes:
        matched: keys loaded into the model.
        missing: model keys the state dict lacks (new parts: ME, temporal conv ...).
        unexpected: state-dict keys the model lacks (e.g. the ImageNet classifier ``fc``).
        mismatched: keys present in both with different shapes (left at their initial values).
    """

    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.matched)} keys loaded, {len(self.missing)} missing (kept initial values), "
            f"{len(self.unexpected)} unexpected (ignored), {len(self.mismatched)} with other shapes (ignored)"
        )


def load_matching(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Copies every tensor of ``state_dict`` whose key and shape match a key of ``module``."""
    own = module.state_dict()
    report = LoadReport()
    usable = {}
    for key, value in state_dict.items():
        if key not in own:
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            report.mismatched.append(key)
        else:
            usable[key] = value
            report.matched.append(key)
    report.missing = [k for k in own if k not in usable]
    module.load_state_dict(usable, strict=False)
    return report


def read_state_dict(source: str, backbone_name: str) -> dict[str, torch.Tensor]:
    """Reads a state dict from a file path, or ``"torchvision"`` (torchvision's ImageNet weights).

    ``"torchvision"`` downloads the weights the first time (on machines that may download). A checkpoint
    holding ``{"state_dict": ...}`` or ``{"model": ...}`` is unwrapped, and a ``module.`` prefix removed.
    """
    if source == "torchvision":
        import torchvision

        enum_name = _TORCHVISION_WEIGHTS.get(backbone_name)
        if enum_name is None:
            raise ValueError(f"torchvision has no ImageNet weights for backbone '{backbone_name}'")
        weights = getattr(torchvision.models, enum_name).DEFAULT
        return weights.get_state_dict(progress=True)
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path} (give a .pth path or 'torchvision')")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_pretrained(backbone: nn.Module, source: str, backbone_name: str) -> LoadReport:
    """Loads ImageNet weights into ``backbone`` and logs what matched."""
    report = load_matching(backbone, read_state_dict(source, backbone_name))
    log.info("pretrained %s from %s: %s", backbone_name, source, report.summary())
    return report
