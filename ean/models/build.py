"""The one place where a model config (a plain dict) becomes a network.

A model config is the ``model`` section of a resolved study config. Every key has a default
(``MODEL_DEFAULTS``); an unknown key is an error listing the valid ones, and every part name is checked
against its registry. ``build_model`` accepts the whole resolved config (it reads ``config["model"]``)
or the model section itself.

Keys:
    backbone: ``BACKBONES`` name (resnet50; resnet18 for smoke runs).
    pretrained: None, ``"torchvision"`` or a path to an ImageNet state dict for the backbone.
    num_classes: K.
    num_segments: T (8 or 16: one implementation).
    modality: ``"rgb"`` (one frame per segment) or ``"rgb_<motion>"``, a ``MOTIONS`` name after ``rgb_``: the
        frames of each segment go to that motion module too (``"rgb_lmc"``: 5 frames, the paper's LMC;
        ``"rgb_diff"``: the same frames as plain RGB differences).
    input_size: training crop size (sets the SOI-Tr's positional embedding size).
    temporal_conv, motion_excitation: the ResNet baseline's temporal parts in every bottleneck; temporal_conv
        ``True`` (learned depthwise conv, shift-initialised), ``False`` (none) or ``"shift"`` (TSM's fixed shift).
    block: ``BLOCKS`` name; block_stages: stages (1-5) followed by a block; block_options: keyword
        arguments of the block (eab: pool, inter_relu, dilation, factorization).
    fusion: ``FUSIONS`` name, the EAB's matrix M (read by ``eab`` only); fusion_options: keyword arguments of
        the fusion (dynamic: ``identity_init``, False for M as the ESP-Net predicts it, the paper's text).
    regions: ``REGIONS`` name; region_stages: stages followed by a SOI-Tr; num_regions: R per frame;
        region_options: keyword arguments of the region strategy (fasterrcnn: weights, cache_dir, ...).
    soi_options: keyword arguments of the SOI-Tr (depth, heads, head_dim, mlp_hidden).
    motion_options: keyword arguments of the motion module (the LMC's: latent, units, ...).
    dropout: before the classifier.
    rgb_frame: ``"middle"`` (the authors' code) or ``"first"`` (the paper's text) frame of each segment.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from torch import nn

import ean.models.blocks  # noqa: F401  (registers the blocks)
import ean.models.fusion  # noqa: F401
import ean.models.lmc  # noqa: F401  (registers the motion modules)
import ean.models.rgb_difference  # noqa: F401
import ean.models.soi  # noqa: F401
from ean.config_keys import check_known_keys
from ean.models import backbone as _backbones  # noqa: F401
from ean.models.backbone import check_temporal_conv
from ean.models.ean_net import EAN
from ean.models.pretrained import load_pretrained
from ean.models.registries import BACKBONES, BLOCKS, FUSIONS, MOTIONS, REGIONS
from ean.models.soi.soi_tr import SOITransformer

MODEL_DEFAULTS: dict[str, Any] = {
    "backbone": "resnet50",
    "pretrained": None,
    "num_classes": 174,
    "num_segments": 8,
    "modality": "rgb",
    "input_size": 224,
    "temporal_conv": True,
    "motion_excitation": True,
    "block": "eab",
    "block_stages": [1, 2, 3, 4],
    "block_options": {},
    "fusion": "dynamic",
    "fusion_options": {},
    "regions": "saliency",
    "region_stages": [5],
    "num_regions": 4,
    "region_options": {},
    "soi_options": {},
    "motion_options": {},
    "dropout": 0.5,
    "rgb_frame": "middle",
}
#: The modality without a motion module; ``"rgb_<name>"`` adds the ``MOTIONS`` variant ``name``.
RGB = "rgb"
RGB_FRAMES = ("middle", "first")
#: Keys renamed since: a config that still uses one (a run's saved config) reads as if it used the new name.
RENAMED = {"lmc_options": "motion_options"}


class ModelConfigError(ValueError):
    """A model config that cannot be built; the message names the key, the value and the valid choices."""


def resolve_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fills defaults and validates a model config; returns a new dict (the input is not changed)."""
    section = _renamed(dict(config.get("model", config)))
    check_known_keys("model", section, MODEL_DEFAULTS, ModelConfigError)
    cfg = copy.deepcopy(MODEL_DEFAULTS)
    cfg.update(copy.deepcopy(dict(section)))
    _validate(cfg)
    return cfg


def _renamed(section: dict[str, Any]) -> dict[str, Any]:
    """A model section with its keys renamed since (``RENAMED``): the configs of runs made before read as they
    did; a section with both names is a ModelConfigError."""
    for old, new in RENAMED.items():
        if old not in section:
            continue
        if section.get(new):
            raise ModelConfigError(f"model.{old} is now model.{new}: give the options once, as model.{new}")
        section[new] = section.pop(old)
    return section


def _choice(cfg: dict, key: str, choices: tuple) -> None:
    if cfg[key] not in choices:
        raise ModelConfigError(f"model.{key} = {cfg[key]!r}; valid: {', '.join(map(str, choices))}")


#: The model keys whose values name a registered part or a choice (text).
NAME_KEYS = ("backbone", "block", "fusion", "regions", "modality", "rgb_frame")
#: The model keys whose values are a part's keyword arguments (mappings).
OPTION_KEYS = ("block_options", "fusion_options", "region_options", "soi_options", "motion_options")


def _check_types(cfg: dict) -> None:
    """ModelConfigError for a value of the wrong kind (before a registry or a constructor sees it)."""
    for key in NAME_KEYS:
        if not isinstance(cfg[key], str):
            raise ModelConfigError(f"model.{key} = {cfg[key]!r}; must be a name (text)")
    for key in OPTION_KEYS:
        if not isinstance(cfg[key], dict):
            raise ModelConfigError(f"model.{key} = {cfg[key]!r}; must be a mapping of keyword arguments")
    if cfg["pretrained"] is not None and not isinstance(cfg["pretrained"], str):
        raise ModelConfigError(f"model.pretrained = {cfg['pretrained']!r}; must be null, a weights name or a file")
    dropout = cfg["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ModelConfigError(f"model.dropout = {dropout!r}; must be a number in [0, 1)")
    if not isinstance(cfg["motion_excitation"], bool):
        raise ModelConfigError(f"model.motion_excitation = {cfg['motion_excitation']!r}; must be true or false")


def _validate(cfg: dict) -> None:
    _check_types(cfg)
    BACKBONES.check(cfg["backbone"])
    BLOCKS.check(cfg["block"])
    FUSIONS.check(cfg["fusion"])
    REGIONS.check(cfg["regions"])
    try:
        check_temporal_conv(cfg["temporal_conv"])
    except ValueError as err:
        raise ModelConfigError(f"model.{err}") from None
    _choice(cfg, "modality", modalities())
    _choice(cfg, "rgb_frame", RGB_FRAMES)
    for key in ("block_stages", "region_stages"):
        stages = cfg[key]
        if not isinstance(stages, list | tuple) or not all(isinstance(s, int) and 1 <= s <= 5 for s in stages):
            raise ModelConfigError(f"model.{key} = {stages!r}; must be a list of stages among 1, 2, 3, 4, 5")
    for key in ("num_classes", "num_segments", "num_regions", "input_size"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ModelConfigError(f"model.{key} = {cfg[key]!r}; must be a positive integer")
    if cfg["input_size"] % 32:
        raise ModelConfigError(f"model.input_size = {cfg['input_size']}; must be a multiple of 32")


def _checked_options(family: str, factory: Any, options: dict, fixed: dict) -> dict:
    params = inspect.signature(factory).parameters
    valid = [p for p in params if p not in fixed]
    bad = [k for k in options if k not in valid]
    if bad:
        raise ModelConfigError(f"{family} options {bad} are not accepted; valid options: {', '.join(valid)}")
    for name, value in options.items():
        kinds = _annotated_kinds(params[name].annotation)
        if kinds and not _is_kind(value, kinds):
            wanted = params[name].annotation if isinstance(params[name].annotation, str) else kinds
            raise ModelConfigError(f"{family} option {name} = {value!r}; must be {wanted}")
    return {**fixed, **options}


#: Simple annotations an option's value is checked against (others, e.g. a tuple or a module, are not checked).
_KINDS = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def _annotated_kinds(annotation: Any) -> tuple[type, ...]:
    """The plain types of an annotation such as ``"int | None"``; empty when any part is not a plain type."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    parts = [part.strip() for part in text.split("|")] if text else []
    if not parts or any(part not in _KINDS for part in parts):
        return ()
    return tuple(_KINDS[part] for part in parts)


def _is_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    """Whether ``value`` is of ``kinds``: a bool is no number, an int is a float."""
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def fusion_arguments(block_factory: Any, cfg: dict) -> dict[str, Any]:
    """The fusion a block takes (``fusion`` and ``fusion_options``, for the blocks that have them); fusion options
    the fusion does not take are a ModelConfigError naming the valid ones."""
    params = inspect.signature(block_factory).parameters
    out = {"fusion": cfg["fusion"]} if "fusion" in params else {}
    if "fusion_options" in params:
        fixed = {"channels": 16, "num_segments": cfg["num_segments"]}
        _checked_options(f"fusion '{cfg['fusion']}'", FUSIONS.get(cfg["fusion"]), cfg["fusion_options"], fixed)
        out["fusion_options"] = dict(cfg["fusion_options"])
    return out


def stage_stride(stage: int) -> int:
    """Downsampling of the feature map after ``stage`` (1: stem, 4; 2: 4; 3: 8; 4: 16; 5: 32)."""
    return 4 * 2 ** max(stage - 2, 0)


def build_blocks(cfg: dict, channels: list[int]) -> dict[str, nn.Module]:
    """Stage (as a string) -> block, for every stage in ``block_stages`` (none when block is ``none``)."""
    factory = BLOCKS.get(cfg["block"])
    blocks = {}
    for stage in sorted(set(cfg["block_stages"])):
        fixed = {"channels": channels[stage - 1], "num_segments": cfg["num_segments"]}
        fixed.update(fusion_arguments(factory, cfg))
        block = factory(**_checked_options(f"block '{cfg['block']}'", factory, cfg["block_options"], fixed))
        if block is not None:
            blocks[str(stage)] = block
    return blocks


def build_sois(cfg: dict, channels: list[int]) -> dict[str, nn.Module]:
    """Stage (as a string) -> SOI-Tr with its region strategy, for every stage in ``region_stages``."""
    factory = REGIONS.get(cfg["regions"])
    sois = {}
    for stage in sorted(set(cfg["region_stages"])):
        fixed = {
            "channels": channels[stage - 1],
            "num_segments": cfg["num_segments"],
            "num_regions": cfg["num_regions"],
        }
        regions = factory(**_checked_options(f"regions '{cfg['regions']}'", factory, cfg["region_options"], fixed))
        if regions is None:
            continue
        size = cfg["input_size"] // stage_stride(stage)
        soi_args = _checked_options("soi", SOITransformer, cfg["soi_options"], {})
        sois[str(stage)] = SOITransformer(channels[stage - 1], cfg["num_segments"], size, regions, **soi_args)
    return sois


def check_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validates a model config, part options included, without building anything (cheap; no downloads).

    Returns:
        The resolved model config.
    """
    cfg = resolve_model_config(config)
    block = BLOCKS.get(cfg["block"])
    fixed = {"channels": 64, "num_segments": cfg["num_segments"], **fusion_arguments(block, cfg)}
    _checked_options(f"block '{cfg['block']}'", block, cfg["block_options"], fixed)
    fixed = {"channels": 64, "num_segments": cfg["num_segments"], "num_regions": cfg["num_regions"]}
    _checked_options(f"regions '{cfg['regions']}'", REGIONS.get(cfg["regions"]), cfg["region_options"], fixed)
    _checked_options("soi", SOITransformer, cfg["soi_options"], {})
    _motion_options(cfg, out_channels=64)
    return cfg


def build_backbone(cfg: dict[str, Any]) -> nn.Module:
    """The backbone of a resolved model config, without pretrained weights (under ``torch.device("meta")``: its
    shapes alone, built in milliseconds)."""
    return BACKBONES.build(
        cfg["backbone"],
        num_segments=cfg["num_segments"],
        temporal_conv=cfg["temporal_conv"],
        motion_excitation=cfg["motion_excitation"],
    )


def build_model(config: dict[str, Any]) -> EAN:
    """Builds the network a (resolved) config describes.

    Args:
        config: a resolved study config with a ``model`` section, or the model section itself.

    Returns:
        An ``EAN`` taking clips (N, T, L, 3, H, W) (L = 1 for RGB, the motion module's for the others: 5 for
        RGB+LMC) to logits (N, K).
    """
    cfg = resolve_model_config(config)
    backbone = build_backbone(cfg)
    if cfg["pretrained"]:
        load_pretrained(backbone, cfg["pretrained"], cfg["backbone"])
    channels = backbone.stage_channels
    motion = None
    if (name := motion_name(cfg)) is not None:
        motion = MOTIONS.build(name, **_motion_options(cfg, out_channels=channels[0]))
    return EAN(
        backbone,
        build_blocks(cfg, channels),
        build_sois(cfg, channels),
        motion,
        num_classes=cfg["num_classes"],
        num_segments=cfg["num_segments"],
        dropout=cfg["dropout"],
        rgb_frame=None if cfg["rgb_frame"] == "middle" else 0,
    )


def frames_per_segment(config: dict[str, Any]) -> int:
    """Frames each segment of the model's input holds: 1 for RGB, the motion module's (5 for RGB+LMC)."""
    name = motion_name(resolve_model_config(config))
    return 1 if name is None else _frames_of(name)


def _frames_of(name: str) -> int:
    """The frames each segment holds for the motion module ``name`` (its ``FRAMES_PER_SEGMENT``).

    Raises:
        ModelConfigError: the variant does not state them (the ``MOTIONS`` contract).
    """
    frames = getattr(MOTIONS.get(name), "FRAMES_PER_SEGMENT", None)
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 2:
        raise ModelConfigError(
            f"motion '{name}' ({MOTIONS.get(name).__qualname__}) states no FRAMES_PER_SEGMENT (an int >= 2: the "
            f"frames of each segment it reads), as the motion family's contract asks: {MOTIONS.contract}"
        )
    return frames


def modalities() -> tuple[str, ...]:
    """The valid ``model.modality`` values: ``rgb`` and ``rgb_<name>`` for each ``MOTIONS`` name."""
    return (RGB, *(f"{RGB}_{name}" for name in MOTIONS.names()))


def motion_name(cfg: dict[str, Any]) -> str | None:
    """The ``MOTIONS`` name a resolved model config's modality adds (None for ``rgb``)."""
    return None if cfg["modality"] == RGB else cfg["modality"].removeprefix(f"{RGB}_")


def _motion_options(cfg: dict[str, Any], out_channels: int) -> dict[str, Any]:
    """The motion module's constructor arguments, options checked (nothing for an RGB model: its
    ``motion_options`` are never read)."""
    name = motion_name(cfg)
    if name is None:
        return {}
    fixed = {"frames_per_segment": _frames_of(name), "out_channels": out_channels}
    return _checked_options(f"motion '{name}'", MOTIONS.get(name), cfg["motion_options"], fixed)
