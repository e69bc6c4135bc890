"""Parameters and FLOPs of any model configuration, counted the way the EAN paper counts them.

FLOPs are multiply-accumulates (MACs) of one clip at the model's input: T segments x 224 x 224 for RGB,
T x 5 frames for RGB+LMC. Parameters are the trainable ones; a frozen detector (``regions: fasterrcnn``)
is reported separately, parameters and MACs. Counting uses ``torch.utils.flop_counter`` (convolutions,
matrix products and attention; 2 FLOPs per MAC there, halved here).

    python -m ean.profile block=s_block
    python -m ean.profile modality=rgb_lmc num_segments=16 --parts
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ean.command_name import command_name
from ean.models import build_model, frames_per_segment, resolve_model_config
from ean.models.build import MODEL_DEFAULTS

ROOT = "EAN"
PARTS = ("backbone", "lmc", "blocks", "sois", "fc")


@dataclass
class ModelProfile:
    """Counts of one model configuration.

    Attributes:
        params: trainable parameters.
        macs: multiply-accumulates of one clip, the detector included.
        detector_params: frozen detector parameters (0 without one).
        detector_macs: the detector's share of ``macs``.
        parts: part name (backbone, lmc, blocks.1, sois.5, fc ...) -> {"params", "macs"}.
    """

    params: int
    macs: int
    detector_params: int = 0
    detector_macs: int = 0
    parts: dict[str, dict[str, int]] = field(default_factory=dict)


def input_shape(config: dict[str, Any]) -> tuple[int, ...]:
    """(1, T, L, 3, S, S): one clip as the model takes it."""
    cfg = resolve_model_config(config)
    return (1, cfg["num_segments"], frames_per_segment(cfg), 3, cfg["input_size"], cfg["input_size"])


def _part_names(model: nn.Module) -> list[str]:
    names = []
    for part in PARTS:
        module = getattr(model, part, None)
        if isinstance(module, nn.ModuleDict):
            names += [f"{part}.{key}" for key in module]
        elif module is not None:
            names.append(part)
    return names


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _frozen(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if not p.requires_grad)


def _attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """FLOPs of softmax(Q K^T) V: two matrix products of (B, H, L, E) x (B, H, S, E)."""
    b, h, length, e = query_shape
    s, ev = key_shape[-2], value_shape[-1]
    return 2 * b * h * length * s * (e + ev)


def _cpu_attention_mapping() -> dict:
    """The CPU kernel of scaled_dot_product_attention, which the stock counter does not know."""
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None:
        return {}

    def formula(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return _attention_flops(query_shape, key_shape, value_shape)

    return {op: formula}


def count_macs(model: nn.Module, clip: torch.Tensor) -> dict[str, int]:
    """Module name (``EAN.blocks.1`` ...) -> MACs of one forward pass on ``clip`` (in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False, depth=None, custom_mapping=_cpu_attention_mapping())
        with torch.no_grad(), counter:
            model(clip)
    finally:
        model.train(was_training)
    return {name: sum(ops.values()) // 2 for name, ops in counter.get_flop_counts().items()}


def _part_macs(macs: dict[str, int], prefix: str, module: nn.Module) -> int:
    """MACs of a part; a part entered child by child (the backbone's stages) sums its children."""
    if prefix in macs:
        return macs[prefix]
    return sum(macs.get(f"{prefix}.{child}", 0) for child, _ in module.named_children())


def without_weights(config: dict[str, Any]) -> dict[str, Any]:
    """The model config with random weights everywhere (no file is read) and no box cache (none is written):
    what counting needs."""
    model = copy.deepcopy(dict(config.get("model", config)))
    model["pretrained"] = None
    options = model.get("region_options") or {}
    if "weights" in options or "cache_dir" in options:
        model["region_options"] = {**options, "weights": None, "cache_dir": None}
    return model


def profile_model(config: dict[str, Any], model: nn.Module | None = None) -> ModelProfile:
    """Counts parameters and MACs of the model that ``config`` describes (built unless given).

    A model built here lives on the ``meta`` device: shapes propagate, nothing is computed or allocated,
    so counting a full-size model takes a fraction of a second. Models with data-dependent operations
    (the Faster R-CNN detector's NMS) are counted on the CPU instead.
    """
    if model is not None:
        return _profile(config, model, torch.zeros(input_shape(config)))
    try:
        with torch.device("meta"):
            return _profile(config, build_model(config), torch.zeros(input_shape(config)))
    except (NotImplementedError, RuntimeError):
        return _profile(config, build_model(config), torch.zeros(input_shape(config)))


def _profile(config: dict[str, Any], model: nn.Module, clip: torch.Tensor) -> ModelProfile:
    macs = count_macs(model, clip)
    detector_macs = sum(v for k, v in macs.items() if k.endswith(".detector") and k.count(".detector") == 1)
    parts = {}
    for name in _part_names(model):
        module = model.get_submodule(name)
        parts[name] = {"params": _trainable(module), "macs": _part_macs(macs, f"{ROOT}.{name}", module)}
    return ModelProfile(
        params=_trainable(model),
        macs=macs.get("Global", 0),
        detector_params=_frozen(model),
        detector_macs=detector_macs,
        parts=parts,
    )


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["block=s_block", "motion_options.patch=32"]`` -> {"block": "s_block", "motion_options": {"patch": 32}}
    (YAML values; a dotted key sets an entry of an options mapping).

    Raises:
        ValueError: an item that is not KEY=VALUE, a value that is not YAML, or an options key (``block_options``
            ...) given a value that is not a mapping.
    """
    config: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}; keys: {', '.join(MODEL_DEFAULTS)}")
        *parents, leaf = key.removeprefix("model.").split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key}: {part} is not a mapping")
        node[leaf] = _yaml_value(key, value)
    _check_mappings(config)
    return config


def _yaml_value(key: str, value: str) -> Any:
    """The YAML value of ``key=value``; ValueError naming the item when it is not YAML."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ValueError(f"{key}={value}: not a YAML value ({problem})") from None


def _check_mappings(config: dict[str, Any]) -> None:
    """ValueError for an options key (a mapping among the defaults) given another value."""
    for key, value in config.items():
        if isinstance(MODEL_DEFAULTS.get(key), dict) and not isinstance(value, dict):
            raise ValueError(
                f"{key}={value!r}: {key} is a mapping of keyword arguments; set one entry as {key}.NAME=VALUE "
                f"or all as {key}={{NAME: VALUE}}"
            )


def format_profile(profile: ModelProfile, show_parts: bool) -> str:
    lines = [f"params {profile.params / 1e6:.2f}M   FLOPs {profile.macs / 1e9:.2f}G (MACs of one clip)"]
    if profile.detector_macs:
        lines.append(
            f"  of which the frozen detector: {profile.detector_macs / 1e9:.2f}G "
            f"({profile.detector_params / 1e6:.2f}M frozen params, not counted in params)"
        )
    if show_parts:
        lines += [f"  {n:<10} {p['params'] / 1e6:8.3f}M {p['macs'] / 1e9:8.3f}G" for n, p in profile.parts.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0, or 2 for bad overrides or a broken plugin)."""
    try:
        return _main(argv)
    except ValueError as err:  # a bad override, an unknown name, a broken plugin (loaded at the first lookup)
        print(f"error: {err}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog=command_name("python -m ean.profile"),
        description="Print trainable parameters and FLOPs (MACs of one clip, the paper's convention) of a model "
        "configuration given as model-config overrides over the EAN 8F RGB defaults.",
        epilog="Keys: " + ", ".join(resolve_model_config({})) + ". Examples: python -m ean.profile block=s_block; "
        "the paper's LMC as its text describes it: python -m ean.profile modality=rgb_lmc motion_options.downsample=1 "
        "motion_options.patch=32 motion_options.latent=128",
    )
    parser.add_argument("overrides", nargs="*", help="model config entries as key=value (YAML values)")
    parser.add_argument("--parts", action="store_true", help="also print each part (backbone, blocks, SOI-Tr ...)")
    args = parser.parse_args(argv)
    profile = profile_model(parse_overrides(args.overrides))
    print(format_profile(profile, args.parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
