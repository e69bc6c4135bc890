"""The network a model config builds, as data: what a trial key hashes for the model.

Two configs that build the same network give the same identity, whatever they spell differently:

- every part's options are bound to its constructor, defaults included (``block_options: {}`` and the
  defaults written out are one network), and options a part never reads are dropped (``fusion`` of an
  S-Block, ``motion_options`` of an RGB model, ``num_regions`` without a SOI-Tr);
- a variant registered ``same_as`` another one is named as that one (the Incep-Block is the EAB with M = I,
  so Table 8's "+Incep-Block" and Table 9's "Identity" are one network);
- parts that are not built (block ``none``, no stages) leave no options behind;
- weights are named by what they are (``torchvision:IMAGENET1K_V1``, or the sha256 of a file), not by
  where the file lies; options that only say where a cache lies (``cache_dir``) are dropped.
"""

from __future__ import annotations

import inspect
from typing import Any

from ean.models.build import MODEL_DEFAULTS, check_model_config, motion_name
from ean.models.pretrained import weights_identity
from ean.models.registries import BLOCKS, FUSIONS, MOTIONS, REGIONS
from ean.models.soi.soi_tr import SOITransformer
from ean.registry import Registry

#: Part options that say where files lie, not what is computed.
LOCATION_OPTIONS = ("cache_dir",)
#: The registry name that means "no part here" in the block and region families.
ABSENT = "none"
WHOLE_MODEL_KEYS = (
    "backbone",
    "num_classes",
    "num_segments",
    "modality",
    "input_size",
    "temporal_conv",
    "motion_excitation",
    "dropout",
    "rgb_frame",
)


def bound_options(factory: Any, options: dict[str, Any], fixed: tuple[str, ...]) -> dict[str, Any]:
    """``options`` with the factory's defaults filled in, less the arguments the builder fixes and any
    option the factory does not take."""
    params = inspect.signature(factory).parameters
    out = {}
    for name, param in params.items():
        if name in fixed or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        if name in options:
            out[name] = options[name]
        elif param.default is not param.empty:
            out[name] = param.default
    return {k: v for k, v in out.items() if k not in LOCATION_OPTIONS}


def _part(registry: Registry, name: str, options: dict[str, Any], fixed: tuple[str, ...]) -> dict[str, Any]:
    canonical, canonical_options = registry.canonical(name, bound_options(registry.get(name), options, fixed))
    full = bound_options(registry.get(canonical), canonical_options, fixed)
    return {"name": canonical, "options": full}


def _non_default_fusion_options(cfg: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """The block's fusion options that differ from the fusion's defaults (none: the identity of every network
    built before fusion options existed stays as it was)."""
    fusion = block["options"].get("fusion")
    if fusion is None or "fusion_options" not in inspect.signature(BLOCKS.get(block["name"])).parameters:
        return {}
    factory = FUSIONS.get(fusion)
    bound = bound_options(factory, cfg["fusion_options"], ("channels", "num_segments"))
    defaults = bound_options(factory, {}, ("channels", "num_segments"))
    return {k: v for k, v in bound.items() if v != defaults.get(k)}


def _region_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Region options with a weights file named by its contents (Faster R-CNN's ``weights``; torchvision's COCO
    file given by path is ``"torchvision"``, the detector it builds), and Faster R-CNN's score floor where a
    threshold below torchvision's own moves it."""
    from ean.models.soi.regions.fasterrcnn import TORCHVISION_SCORE_FLOOR, is_torchvision_coco

    weights = options.get("weights")
    if isinstance(weights, str) and weights != "torchvision":
        coco = name == "fasterrcnn" and is_torchvision_coco(weights)
        named = "torchvision" if coco else weights_identity(weights, "fasterrcnn")
        options = {**options, "weights": named}
    threshold = options.get("score_threshold")
    low = isinstance(threshold, int | float) and threshold < TORCHVISION_SCORE_FLOOR
    if name == "fasterrcnn" and low:  # torchvision's floor follows the threshold (it did not in runs before)
        options = {**options, "score_floor": "threshold"}
    return options


def network_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The network a model config builds, as plain data (see the module docstring).

    Args:
        config: a model config (or a whole config with a ``model`` section); validated as ``build_model`` would.

    Returns:
        A JSON-able dict: the whole-model keys, ``pretrained`` (weights identity or None), ``blocks``
        (``{"name", "options", "stages"}`` or None), ``sois`` (``{"name", "options", "stages", "num_regions",
        "soi"}`` or None), ``lmc`` (the LMC's options, or None) and, for another motion module, ``motion``
        (``{"name", "options"}``).
    """
    cfg = check_model_config(config)
    out: dict[str, Any] = {key: cfg[key] for key in WHOLE_MODEL_KEYS}
    if motion_name(cfg) is None:  # one frame per segment: the first is the middle one
        out["rgb_frame"] = MODEL_DEFAULTS["rgb_frame"]
    out["pretrained"] = weights_identity(cfg["pretrained"], cfg["backbone"])
    block_options = {"fusion": cfg["fusion"], **cfg["block_options"]}
    out["blocks"] = None
    if cfg["block"] != ABSENT and cfg["block_stages"]:
        part = _part(BLOCKS, cfg["block"], block_options, ("channels", "num_segments", "fusion_options"))
        out["blocks"] = {**part, "stages": sorted(set(cfg["block_stages"]))}
        fusion_options = _non_default_fusion_options(cfg, part)
        if fusion_options:
            out["blocks"]["fusion_options"] = fusion_options
    out["sois"] = None
    if cfg["regions"] != ABSENT and cfg["region_stages"]:
        part = _part(REGIONS, cfg["regions"], cfg["region_options"], ("channels", "num_segments", "num_regions"))
        soi = bound_options(SOITransformer, cfg["soi_options"], ("channels", "num_segments", "feature_size", "regions"))
        out["sois"] = {
            **part,
            "options": _region_options(part["name"], part["options"]),
            "stages": sorted(set(cfg["region_stages"])),
            "num_regions": cfg["num_regions"] if getattr(REGIONS.get(part["name"]), "USES_NUM_REGIONS", True) else None,
            "soi": soi,
        }
    out["lmc"] = None
    name = motion_name(cfg)
    if name is not None:
        part = _part(MOTIONS, name, cfg["motion_options"], ("out_channels", "frames_per_segment"))
        options = {**part["options"], "frames_per_segment": MOTIONS.get(name).FRAMES_PER_SEGMENT}
        out["modality"] = f"rgb_{part['name']}"  # a variant registered same_as another is that one
        if part["name"] == "lmc":  # the LMC keeps the field it had when trial keys were first published
            out["lmc"] = options
        else:
            out["motion"] = {"name": part["name"], "options": options}
    return out
