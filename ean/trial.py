"""The trial config's schema: check a config, state its recipe, say what decides its result, key it.

A trial config is a plain dict with sections ``model`` (:mod:`ean.models.build`), ``data``
(:mod:`ean.data.builder`), ``trainer`` (:mod:`ean.train.config`) and a top-level ``seed``. The layers above
(``runners``) hand one in with the number of devices that will carry its batch, and get back:

- ``check_trial_config``: every problem, each naming the key, the value and the valid choices; checked
  before anything runs (the class count against the data's, the pretrained weights' file, the batch split).
- ``trial_recipe``: the training recipe as it will run (global and per-device batch, accumulation, lr ...).
- ``semantic_config``: what decides the result: the network as built (:func:`ean.models.network_identity`),
  the data's identity (:func:`ean.data.identity.data_identity`), the trainer's semantic keys with the
  per-device batch resolved and ``amp`` as the precision it computes in on the trial's device (``auto``: bf16
  on a GPU, none on a CPU), and the seed. The device itself is not part of it (a CPU and a GPU compute the
  same to float tolerance, as two GPUs do). Where files lie, loader workers, threads, timeouts and the number
  of devices (at the same global and per-device batch) are not part of it: they do not change which clips,
  augmentations and dropout masks each forward pass gets (:mod:`ean.data.global_batches`); BatchNorm's running
  averages are merged over the ranks as one device would have updated them (:mod:`ean.train.running_stats`).
  With ``trainer.batchnorm: sync`` the statistics are taken over every device's pass together, so the key
  holds that batch (``batchnorm_clips``), and with it the device count.
- ``trial_key``: a hash of the semantic config, the data fingerprint and ``ean.__version__`` (and the versions of
  the plugin distributions whose variants it uses, when it uses any: :func:`ean.plugins.plugin_versions`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import torch

import ean
from ean.data.builder import loader_problems
from ean.data.identity import data_fingerprint, data_identity, dataset_num_classes, dataset_options
from ean.data.registry import DATASETS
from ean.models import check_model_config, network_identity, resolve_model_config
from ean.models.build import RGB, build_backbone, motion_name
from ean.models.pretrained import NAMED_WEIGHTS, PretrainedWeightsError, file_fit_problem, weights_file
from ean.models.registries import BACKBONES, BLOCKS, FUSIONS, MOTIONS, REGIONS
from ean.plugins import plugin_versions
from ean.train.build import model_data_keys
from ean.train.config import TRAINER_DEFAULTS, device_batch, device_type, resolve_trainer_config, resolved_amp

SECTIONS = ("model", "data", "trainer", "seed")
#: Data keys any dataset takes besides its constructor's options (read by the loader or the layout).
DATA_COMMON = ("dataset", "root", "num_workers", "loader_timeout_s", "media", "frames_root")
#: Trainer keys that change how a run executes or reports, not what it computes.
TRAINER_OPERATIONAL = ("eval_every", "checkpoint_every", "num_threads")
#: Trainer keys added after trial keys were first published: hashed only when not at their default, so that
#: every key made before they existed stands (a trainer key not listed here enters every key: add a new one
#: here, with its default reproducing what trials computed before it; the golden keys of
#: ``tests/runners/test_studies.py`` fail otherwise).
TRAINER_OMITTED_AT_DEFAULT: tuple[str, ...] = ()
#: Trainer keys a run may change and still resume (training longer; a checkpoint continued on another device in
#: the same precision: ``amp: auto`` is bf16 on a GPU and none on a CPU, which a resume refuses).
RESUMABLE = ("epochs", "device")
#: Data keys that say how a finished training is tested, not what it trains: a checkpoint may be evaluated
#: again under another protocol (an evaluation row of a study).
EVALUATION_KEYS = ("test_clips", "test_crops", "test_crop_size", "views")  # views: MULTI_VIEW_RULE's entry


#: How a protocol of several views places and combines them, as the authors' test code does: clip c of k > 1
#: starts at c / k of each segment (``ean.data.sampling.sparse_test_offsets``) and the views' logits are
#: averaged before the softmax (``ean.train.evaluate``). In the key of every trial tested on more than one view
#: (0.4.3 spread k clips evenly and averaged probabilities: those trials' results have other keys).
MULTI_VIEW_RULE = "clips at c/k of each segment, logits averaged"


def protocol_key(protocol: str) -> str:
    """What a protocol tag (``"2x1"``) computes, for a key: the tag, and ``MULTI_VIEW_RULE`` with several views."""
    clips, crops = (int(n) for n in protocol.split("x"))
    return protocol if clips * crops == 1 else f"{protocol} ({MULTI_VIEW_RULE})"


def protocol_of(data_cfg: dict[str, Any]) -> str:
    """The evaluation protocol of a data config, clips x crops: ``"1x1"``, ``"10x3"``."""
    return f"{int(data_cfg.get('test_clips') or 1)}x{int(data_cfg.get('test_crops') or 1)}"


def trial_recipe(config: dict[str, Any], devices: int = 1) -> dict[str, Any]:
    """The recipe a trial config trains with on ``devices`` devices (raises TrainerConfigError if it cannot).

    Returns:
        ``global_batch``, ``per_device_batch``, ``accumulation``, ``devices``, ``lr``, ``epochs``,
        ``schedule``, ``lr_steps``, ``momentum``, ``weight_decay``, ``param_groups``, ``clip_grad``,
        ``dropout``, ``pretrained`` (the weights' identity or None), ``protocol`` and ``precision`` (``amp``
        resolved on the trial's device: ``"fp32"``, ``"bf16"`` or ``"fp16"``).
    """
    trainer = resolve_trainer_config(config)
    model = check_model_config(config.get("model", {}))
    per_device, accumulation = device_batch(trainer, devices)
    identity = network_identity(model)
    precision = resolved_amp(trainer["amp"], device_type(trainer["device"]))
    return {
        "global_batch": trainer["batch_size"],
        "per_device_batch": per_device,
        "accumulation": accumulation,
        "devices": devices,
        "lr": trainer["lr"],
        "epochs": trainer["epochs"],
        "schedule": trainer["schedule"],
        "lr_steps": trainer["lr_steps"],
        "momentum": trainer["momentum"],
        "weight_decay": trainer["weight_decay"],
        "param_groups": trainer["param_groups"],
        "clip_grad": trainer["clip_grad"],
        "dropout": model["dropout"],
        "pretrained": identity["pretrained"],
        "protocol": protocol_of(config.get("data", {})),
        "precision": "fp32" if precision == "none" else precision,
    }


def semantic_config(config: dict[str, Any], devices: int = 1) -> dict[str, Any]:
    """What decides a trial's result (see the module docstring); plain JSON-able data."""
    trainer = resolve_trainer_config(config)
    trainer["per_device_batch"], _ = device_batch(trainer, devices)
    trainer["amp"] = resolved_amp(trainer["amp"], device_type(trainer.pop("device")))
    if trainer["schedule"] == "cosine":  # the step schedule's own settings are never read
        trainer.pop("lr_steps"), trainer.pop("lr_gamma")
    if trainer["batchnorm"] == "sync" and devices == 1:  # one process: plain BatchNorm, as ``train`` has
        trainer["batchnorm"] = "train"
    if trainer["batchnorm"] == "sync":  # SyncBatchNorm's statistics span the devices' concurrent passes
        trainer["batchnorm_clips"] = trainer["per_device_batch"] * devices
    if trainer.get("channels_last") is True:  # ``auto`` is on everywhere (``ean.train.config.use_channels_last``)
        trainer["channels_last"] = "auto"
    for key in TRAINER_OPERATIONAL:
        trainer.pop(key)
    for key in TRAINER_OMITTED_AT_DEFAULT:
        if trainer.get(key) == TRAINER_DEFAULTS.get(key):
            trainer.pop(key, None)
    data = data_identity(_data_as_trained(config))
    if protocol_key(protocol_of(config["data"])) != protocol_of(config["data"]):
        data["views"] = MULTI_VIEW_RULE
    return {
        "network": network_identity(config.get("model", {})),
        "data": data,
        "trainer": trainer,
        "seed": config.get("seed", 0),
    }


def key_inputs(config: dict[str, Any], devices: int = 1, fingerprint: str | None = None) -> dict[str, Any]:
    """What a trial key hashes: the semantic config, the data fingerprint (read here unless given), the code
    version and the versions of the plugins whose variants the config uses; plain JSON data."""
    payload = {
        "config": _plain_numbers(semantic_config(config, devices)),
        "data": fingerprint or data_fingerprint(config["data"]),
        "code": ean.__version__,
    }
    plugins = plugin_versions(_variants(config))
    if plugins:
        payload["plugins"] = plugins
    return json.loads(json.dumps(payload, sort_keys=True, default=str))


def trial_key(config: dict[str, Any], devices: int = 1, fingerprint: str | None = None) -> str:
    """A stable hash (16 hex digits) of the semantic config, the data fingerprint and the code version
    (``key_inputs``).

    ``ean.__version__`` is part of the key: bump it when a change alters what a config computes. So are the
    versions of the plugin distributions whose variants the config uses (a config that uses none has the key
    it had before plugins were keyed).
    """
    return key_of(key_inputs(config, devices, fingerprint))


def key_of(inputs: dict[str, Any]) -> str:
    """The trial key of ``key_inputs``."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def key_changes(planned: dict[str, Any], here: dict[str, Any], path: str = "") -> list[str]:
    """Where two ``key_inputs`` differ: ``"config.network.pretrained: sha256:1403... -> sha256:0225..."`` each."""
    if isinstance(planned, dict) and isinstance(here, dict):
        changes = []
        for name in sorted(set(planned) | set(here), key=str):
            inner = f"{path}.{name}" if path else str(name)
            changes += key_changes(planned.get(name), here.get(name), inner)
        return changes
    return [] if planned == here else [f"{path}: {planned} -> {here}"]


def _data_as_trained(config: dict[str, Any]) -> dict[str, Any]:
    """The data section with the keys the trial takes from the model when it leaves them out (segments, frames
    per segment, crop size: ``ean.train.build``), so that the test crop defaults to the crop it trains at."""
    data = dict(config["data"])
    for key, value in model_data_keys(resolve_model_config(config.get("model") or {})).items():
        if data.get(key) is None:
            data[key] = value
    return data


def _variants(config: dict[str, Any]) -> list[object]:
    """The registered variants a trial config chooses by name (backbone, block, fusion, regions, motion module,
    dataset)."""
    model = config.get("model") or {}
    modality = model.get("modality", RGB)
    motion = motion_name({"modality": modality}) if isinstance(modality, str) else None
    choices = [(BACKBONES, model.get("backbone")), (BLOCKS, model.get("block")), (FUSIONS, model.get("fusion")),
               (REGIONS, model.get("regions")), (MOTIONS, motion),
               (DATASETS, config["data"].get("dataset"))]  # fmt: skip
    return [registry.get(name) for registry, name in choices if isinstance(name, str) and name in registry]


def _plain_numbers(value: Any) -> Any:
    """``value`` with each whole float as its int: ``clip_grad: 20`` and ``20.0`` are one recipe."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_numbers(v) for v in value]
    return value


def resume_differences(saved: dict[str, Any], now: dict[str, Any], devices: int) -> list[str]:
    """The semantic differences between a checkpoint's config and the current one (``epochs`` may grow; the
    test protocol may change: ``EVALUATION_KEYS``)."""
    before, after = semantic_config(saved, devices), semantic_config(now, devices)
    for config in (before, after):
        for key in RESUMABLE:
            config["trainer"].pop(key, None)
        for key in EVALUATION_KEYS:
            config["data"].pop(key, None)
    return [
        f"{section}.{key}: checkpoint {before[section].get(key)!r}, now {after[section].get(key)!r}"
        for section in ("network", "data", "trainer")
        for key in sorted(set(before[section]) | set(after[section]))
        if before[section].get(key) != after[section].get(key)
    ] + ([f"seed: checkpoint {before['seed']}, now {after['seed']}"] if before["seed"] != after["seed"] else [])


# -- checks ------------------------------------------------------------------------------------------


def check_trial_config(config: dict[str, Any], devices: int = 1, require_files: bool = True) -> list[str]:
    """Every problem of a trial config (empty when it can run), each naming key, value and valid choices.

    ``require_files=False`` leaves out what needs the machine's files (the data root, the class count read
    from the annotations, a pretrained weights file): a plan made to estimate a study's cost elsewhere.
    """
    unknown = sorted(set(config) - set(SECTIONS))
    problems = [f"unknown top-level keys {unknown}; valid: {', '.join(SECTIONS)}"] if unknown else []
    for check in (_check_model, _check_data, _check_trainer, _check_seed, _check_motion_sizes):
        problems += check(config, devices)
    if not require_files:
        return problems
    problems += _check_weights_file(config) + _check_data_root(config)
    return problems or _check_classes(config)


def _check_model(config: dict, devices: int) -> list[str]:
    try:
        check_model_config(config.get("model", {}))
    except (ValueError, LookupError) as err:
        return [f"model: {err}"]
    return []


def _check_weights_file(config: dict) -> list[str]:
    try:
        model = check_model_config(config.get("model", {}))
    except (ValueError, LookupError):
        return []  # reported by _check_model
    problems = []
    if model["pretrained"]:
        try:
            weights_file(model["pretrained"], model["backbone"])
            fit = _weights_fit(model)
        except (PretrainedWeightsError, ValueError) as err:
            fit = str(err)
        if fit:
            problems.append(f"model: {fit}")
    regions = REGIONS.get(model["regions"])  # a region strategy may read files of its own (Faster R-CNN's weights)
    if hasattr(regions, "file_problems"):
        problems += [f"model: {p}" for p in regions.file_problems(**model.get("region_options", {}))]
    return problems


def _weights_fit(model: dict[str, Any]) -> str | None:
    """Whether a weights file fits the backbone (``file_fit_problem``); not checked for named weights
    (torchvision's own for the backbone) or a backbone that cannot be built on the meta device (a plugin's)."""
    if model["pretrained"] in NAMED_WEIGHTS:
        return None
    args = (model["backbone"], model["num_segments"], json.dumps(model["temporal_conv"]), model["motion_excitation"])
    own = _backbone_shapes(*args)
    return None if own is None else file_fit_problem(model["pretrained"], model["backbone"], own)


@functools.lru_cache(maxsize=32)
def _backbone_shapes(name: str, segments: int, temporal_conv: str, excitation: bool) -> dict[str, tuple] | None:
    """The state-dict shapes of a backbone, built on the meta device (no memory, no weights); None when it
    cannot be built there."""
    cfg = {"backbone": name, "num_segments": segments, "temporal_conv": json.loads(temporal_conv)}
    try:
        with torch.device("meta"):
            backbone = build_backbone({**cfg, "motion_excitation": excitation})
    except Exception:  # noqa: BLE001  a plugin's backbone may compute values while it is built
        return None
    return {k: tuple(v.shape) for k, v in backbone.state_dict().items()}


def data_keys(name: str) -> list[str]:
    """The data config keys a dataset accepts."""
    return sorted({*DATA_COMMON, *dataset_options(name)})


def _check_data(config: dict, devices: int) -> list[str]:
    data = config.get("data", {})
    name = data.get("dataset")
    try:
        DATASETS.check(name)
    except LookupError as err:
        return [f"data: {err}"]
    valid = data_keys(name)
    unknown = sorted(set(data) - set(valid))
    problems = [f"data: unknown keys {unknown} for dataset '{name}'; valid: {', '.join(valid)}"] if unknown else []
    if config.get("model", {}).get("num_segments") != data.get("num_segments"):
        problems.append("data.num_segments differs from model.num_segments")
    return problems + loader_problems(data)


def _check_data_root(config: dict) -> list[str]:
    data = config.get("data", {})
    name, root = data.get("dataset"), data.get("root")
    if name not in DATASETS.names():
        return []  # reported by _check_data
    dataset = DATASETS.get(name)
    if getattr(dataset, "GENERATED", False):  # written on first use: unless the root holds other data
        return [f"data: {p}" for p in dataset.root_problems(data)] if hasattr(dataset, "root_problems") else []
    if root and Path(root).exists():
        return []
    doc = (DATASETS.get(name).__doc__ or "").strip().splitlines()
    expected = f" ({doc[0].rstrip('.')})" if doc else ""
    return [
        f"data.root '{root}' does not exist: dataset '{name}'{expected} is expected there. "
        f"Set data.root=PATH (or use data=synthetic for generated data)"
    ]


def _check_trainer(config: dict, devices: int) -> list[str]:
    try:
        device_batch(resolve_trainer_config(config), devices)
    except (ValueError, LookupError) as err:
        return [f"trainer: {err}"]
    return []


def _check_motion_sizes(config: dict, devices: int) -> list[str]:
    """A motion module that cuts frames into cells (the LMC: patches of ``patch x downsample`` pixels) states
    their size (``input_multiple``): the test crop must be a multiple of it (found at planning, not after
    training when the test crop fails; the training crop, ``model.input_size``, is checked with the model)."""
    try:
        model = check_model_config(config.get("model", {}))
    except (ValueError, LookupError):
        return []  # reported by _check_model
    name = motion_name(model)
    if name is None:
        return []
    name, options = MOTIONS.canonical(name, model["motion_options"])  # a variant registered same_as another
    multiple = getattr(MOTIONS.get(name), "input_multiple", None)
    if multiple is None:
        return []
    defaults = {k: p.default for k, p in inspect.signature(MOTIONS.get(name)).parameters.items()}
    options = {**defaults, **options}
    try:
        cell = int(multiple(**options))
    except (TypeError, ValueError) as err:
        return [f"model: motion '{name}': input_multiple({options}) failed: {type(err).__name__}: {err}"]
    data = config.get("data", {})
    sizes = {"data.test_crop_size": data.get("test_crop_size")}
    described = ", ".join(f"{k} {options[k]}" for k in inspect.signature(multiple).parameters if k in options)
    return [
        f"{key} = {size}: the motion module '{name}' needs a multiple of {cell} ({described}); "
        f"e.g. {max(cell, size // cell * cell)}"
        for key, size in sizes.items()
        if size and int(size) % cell
    ]


def _check_seed(config: dict, devices: int) -> list[str]:
    seed = config.get("seed")
    return [] if isinstance(seed, int) and not isinstance(seed, bool) else [f"seed = {seed!r}; must be an integer"]


def _check_classes(config: dict) -> list[str]:
    data, wanted = config["data"], check_model_config(config.get("model", {}))["num_classes"]
    try:
        found = dataset_num_classes(data)
    except (ValueError, OSError) as err:
        return [f"data: cannot read the annotations of '{data['dataset']}' at {data.get('root')}: {err}"]
    if found != wanted:
        return [
            f"model.num_classes = {wanted} but dataset '{data['dataset']}' at {data.get('root')} has {found} "
            f"classes; set model.num_classes={found} (or use the dataset the model is for)"
        ]
    return []
