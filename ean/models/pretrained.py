"""Loading ImageNet weights into the backbone by torchvision key names, with a report of what matched.

``python -m ean.download_weights resnet50 imagenet1k_v1`` downloads named weights into torch's hub cache
(where ``model.pretrained: imagenet1k_v1`` finds them) with :func:`download`; nothing else downloads.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ean.files_read import note

log = logging.getLogger(__name__)

#: The backbones with named ImageNet weights: name -> torchvision's weights enum.
TORCHVISION_WEIGHTS = {
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


#: Named ImageNet weights: torchvision's weight versions. ``imagenet1k_v1`` is what the authors loaded
#: (torchvision's original ``resnet50``, 76.1% top-1); ``torchvision`` is torchvision's current default.
NAMED_WEIGHTS = ("imagenet1k_v1", "imagenet1k_v2", "torchvision")


class PretrainedWeightsError(FileNotFoundError):
    """Pretrained weights that cannot be read; the message names the file to place, where, and how to get it."""


def torchvision_weights(name: str, backbone_name: str):
    """The torchvision ``Weights`` enum member a named source stands for (``imagenet1k_v1`` ...)."""
    import torchvision

    enum_name = TORCHVISION_WEIGHTS.get(backbone_name)
    if enum_name is None:
        raise ValueError(f"torchvision has no ImageNet weights for backbone '{backbone_name}'")
    weights = getattr(torchvision.models, enum_name)
    if name == "torchvision":
        return weights.DEFAULT
    member = name.upper()
    if member not in weights.__members__:
        valid = ", ".join(m.lower() for m in weights.__members__)
        raise ValueError(f"backbone '{backbone_name}' has no weights '{name}'; valid: {valid}, torchvision")
    return weights[member]


def hub_file(name: str, backbone_name: str) -> Path:
    """Where torch's hub cache keeps the named weights (``$TORCH_HOME/hub/checkpoints/<file of the url>``)."""
    url = torchvision_weights(name, backbone_name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def weights_file(source: str, backbone_name: str) -> Path:
    """The file a pretrained source reads: the hub cache's for a named source, else the path itself.

    Raises:
        PretrainedWeightsError: the file is not there (the message says what to place where, and how).
    """
    if source in NAMED_WEIGHTS:
        path = hub_file(source, backbone_name)
        note(path)
        if not path.is_file():
            url = torchvision_weights(source, backbone_name).url
            raise PretrainedWeightsError(
                f"model.pretrained = {source!r} needs {path.name} (torchvision's {backbone_name} "
                f"{torchvision_weights(source, backbone_name).name}) at {path}. Get it with "
                f"'python -m ean.download_weights {backbone_name} {source}' on a machine with network "
                f"(it downloads {url} and checks its hash), or copy the file there ($TORCH_HOME moves the "
                "cache); or set model.pretrained=PATH to a state dict, or model.pretrained=null to train from scratch"
            )
        return path
    path = Path(source).expanduser()
    note(path)
    if not path.is_file():
        raise PretrainedWeightsError(
            f"pretrained weights file not found: {path} (give a state-dict path, one of {', '.join(NAMED_WEIGHTS)}, "
            "or null to train from scratch)"
        )
    return path


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, *version: int) -> str:
    """The sha256 of a file's contents, once per ``version`` (size, mtime, inode, ctime: ``_version``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _version(path: Path) -> tuple[int, ...]:
    """What tells one version of a file from another without reading it: size, mtime, and the inode and change
    time, which a file put in its place with the same size and mtime (``cp -p``, ``touch -r``) does not keep."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns


def weights_identity(source: str | None, backbone_name: str) -> str | None:
    """What a pretrained source is, not where it lies: ``None``, ``"torchvision:IMAGENET1K_V1"`` for a named
    source, or ``"sha256:<16 hex>"`` of a file's contents (hashed once per file version); inside
    ``files_elsewhere()``, a file not on this machine is ``"file:<path>"``.

    Raises:
        PretrainedWeightsError: the file is not there (outside ``files_elsewhere()``).
    """
    if not source:
        return None
    if source in NAMED_WEIGHTS:
        return f"torchvision:{torchvision_weights(source, backbone_name).name}"
    if _ELSEWHERE.get() and not Path(source).expanduser().is_file():
        return f"file:{Path(source).expanduser()}"
    path = weights_file(source, backbone_name)
    return "sha256:" + _file_digest(str(path.resolve()), *_version(path))[:16]


#: Whether weights files may be missing here (a plan made to estimate a study's cost on another machine).
_ELSEWHERE: contextvars.ContextVar[bool] = contextvars.ContextVar("weights_elsewhere", default=False)


@contextlib.contextmanager
def files_elsewhere() -> Iterator[None]:
    """Within it, a weights file that is not on this machine is named by its path (``weights_identity``): a
    plan for an estimate, whose keys then name no file contents (as its data fingerprints name no data)."""
    token = _ELSEWHERE.set(True)
    try:
        yield
    finally:
        _ELSEWHERE.reset(token)


def read_state_dict(source: str, backbone_name: str) -> dict[str, torch.Tensor]:
    """Reads a state dict from a file path or a named source (``imagenet1k_v1`` ...: the hub cache's file).

    Files load with ``weights_only=True``; a named source's file must carry the hash prefix of its name (as
    torch's hub checks downloads). A checkpoint holding ``{"state_dict": ...}`` or ``{"model": ...}`` is
    unwrapped, and a ``module.`` prefix removed.
    """
    path = weights_file(source, backbone_name)
    if source in NAMED_WEIGHTS:
        _check_hub_hash(path)
    return _tensors(torch.load(path, map_location="cpu", weights_only=True))


def _tensors(state) -> dict[str, torch.Tensor]:
    """A loaded file's state dict: ``{"state_dict": ...}`` or ``{"model": ...}`` unwrapped, ``module.`` removed."""
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise TypeError(f"it holds a {type(state).__name__}, not a dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def file_sha256(path: Path) -> str:
    """The sha256 (hex) of a file's contents, hashed once per file version."""
    return _file_digest(str(path.resolve()), *_version(path))


def hub_hash_prefix(name: str) -> str:
    """The hash prefix torch's hub puts in a weights file's name: ``name-<first hex digits of the sha256>.pth``
    (of a file name or a URL)."""
    return Path(name).stem.rsplit("-", 1)[-1]


def _check_hub_hash(path: Path) -> None:
    """torch's hub convention (``hub_hash_prefix``): the file's sha256 starts with the prefix in its name."""
    prefix = hub_hash_prefix(path.name)
    if not _file_digest(str(path.resolve()), *_version(path)).startswith(prefix):
        raise PretrainedWeightsError(f"{path}: its sha256 does not start with {prefix}; the file is damaged or other")


def download(backbone_name: str, source: str) -> Path:
    """Downloads named weights into the hub cache (hash checked); returns the file."""
    path = hub_file(source, backbone_name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(torchvision_weights(source, backbone_name).url, str(path), hash_prefix=None)
    _check_hub_hash(path)
    return path


class PretrainedMismatchError(ValueError):
    """A weights file that does not fit the backbone (``fit_problem``)."""


def fit_problem(report: LoadReport, source: str, backbone_name: str, own: dict[str, tuple]) -> str | None:
    """Why the state dict ``report`` describes does not fit the backbone (None when it does): not one key in
    common (a checkpoint of another codebase, its keys prefixed), a key of another shape (another network's
    weights), or tensors of torchvision's network of that name missing (a smaller network's weights). Any of
    them would train from partly random weights under the name of the file.

    Args:
        own: the backbone's state-dict shapes, key -> shape.
    """
    if not report.matched:
        theirs = ", ".join((report.unexpected + report.mismatched)[:3]) or "none"
        mine = ", ".join(list(own)[:3])
        return (
            f"model.pretrained = {source}: not one of its tensors has a key of the {backbone_name} backbone (its "
            f"keys: {theirs}, ...; the backbone's: {mine}, ...). A checkpoint of another codebase? Save its "
            "backbone's state dict with torchvision's ResNet key names (a prefix such as 'base_model.' removed)"
        )
    if report.mismatched:
        shown = ", ".join(f"{k} ({tuple(own[k])} here)" for k in report.mismatched[:3])
        return (
            f"model.pretrained = {source}: {len(report.mismatched)} of its tensors have other shapes than the "
            f"{backbone_name} backbone's ({shown}{', ...' if len(report.mismatched) > 3 else ''}): the weights "
            "of another network?"
        )
    present = {*report.matched, *report.mismatched}
    lacking = [k for k in torchvision_keys(backbone_name) if k not in present]
    if lacking:
        shown = ", ".join(lacking[:3]) + (", ..." if len(lacking) > 3 else "")
        return (
            f"model.pretrained = {source}: it lacks {len(lacking)} tensors of torchvision's {backbone_name} "
            f"({shown}): the weights of a smaller network (resnet50's for a resnet101), or part of one?"
        )
    return None


def load_pretrained(backbone: nn.Module, source: str, backbone_name: str) -> LoadReport:
    """Loads ImageNet weights into ``backbone`` and logs what matched.

    Raises:
        PretrainedMismatchError: the file does not fit the backbone (``fit_problem``); nothing is loaded.
    """
    state = read_state_dict(source, backbone_name)
    own = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    report = shape_report(own, state)
    problem = fit_problem(report, source, backbone_name, own)
    if problem:
        raise PretrainedMismatchError(problem)
    backbone.load_state_dict({k: state[k] for k in report.matched}, strict=False)
    log.info("pretrained %s from %s: %s", backbone_name, source, report.summary())
    return report


def shape_report(own: dict[str, tuple], state: dict[str, torch.Tensor]) -> LoadReport:
    """Which keys of ``state`` a module of state-dict shapes ``own`` would take (same key and shape), and which not."""
    report = LoadReport()
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != own[key]:
            report.mismatched.append(key)
        else:
            report.matched.append(key)
    matched = set(report.matched)
    report.missing = [k for k in own if k not in matched]
    return report


@functools.lru_cache(maxsize=8)
def torchvision_keys(backbone_name: str) -> tuple[str, ...]:
    """The state-dict keys of torchvision's network of that name, less its classifier (``fc.``) and BatchNorm's
    step counters (``num_batches_tracked``, which files saved before torch 0.4.1 lack): what ImageNet weights for
    the backbone hold. Empty for a backbone torchvision has no weights for (a plugin's)."""
    if backbone_name not in TORCHVISION_WEIGHTS:
        return ()
    import torchvision

    with torch.device("meta"):
        network = getattr(torchvision.models, backbone_name)()
    return tuple(k for k in network.state_dict() if not k.startswith("fc.") and not k.endswith(".num_batches_tracked"))


def file_fit_problem(source: str, backbone_name: str, own: dict[str, tuple]) -> str | None:
    """``fit_problem`` of a weights file (a path, not a named source: those are torchvision's weights of the
    backbone, hash-checked) for a backbone of state-dict shapes ``own``, read without its tensors' data
    (memory-mapped); a file that cannot be read says so."""
    if source in NAMED_WEIGHTS:
        return None
    path = weights_file(source, backbone_name)
    try:
        state = _shapes(str(path.resolve()), *_version(path))
    except Exception as err:  # noqa: BLE001  torch's unpickler raises many kinds
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        return f"model.pretrained = {source}: not a state dict torch.load reads with weights_only ({first})"
    return fit_problem(shape_report(own, state), source, backbone_name, own)


@functools.lru_cache(maxsize=16)
def _shapes(path: str, *version: int) -> dict[str, torch.Tensor]:
    """The state dict of a file on the meta device (shapes only), once per file version."""
    try:
        state = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except RuntimeError as err:  # a file of torch's legacy format cannot be memory-mapped
        if "mmap" not in str(err):
            raise
        state = torch.load(path, map_location="meta", weights_only=True)
    return _tensors(state)
