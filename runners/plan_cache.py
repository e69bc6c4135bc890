"""The plan cache: a study's planned trials kept on disk, so that planning the same study again (a dry run, a
re-run with nothing to train) neither composes with Hydra nor imports torch.

An entry is keyed by everything planning depends on: the spec as selected (``--rows`` applied), the profile,
the command line's overrides, the seeds, the working folder (relative paths resolve against it), whether the
files were required, the code (every source file of ``ean``, ``runners`` and ``study``: size and mtime), the
config folders' files, the plugins installed (and their folders' files), the versions of the packages
planning uses and the environment variables that move files (``HOME``, ``TORCH_HOME``, ``XDG_CACHE_HOME``, ``EAN_*``).
It keeps the trials (configs, keys, recipes, data fingerprints; Params/FLOPs once counted) and the files
planning read (``ean.files_read``: data roots, annotation files, weights files; and every absolute path in a
trial's config), each with its size and mtime, or absent. A hit stands only while each file is as it was;
anything else plans again. Entries live in the on-disk cache (``runners.cache``, kind ``plan``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import ean
from ean.files_read import file_signature, unchanged
from ean.plugins import plugin_entry_points
from runners.cache import DiskCache
from runners.file_tree import files_under
from runners.trials import ModelCounts, Trial
from study.spec import StudySpec

#: Packages whose source decides a plan.
CODE_PACKAGES = ("ean", "runners", "study")
#: Distributions whose versions decide a plan (composition, the checks, the counts).
DISTRIBUTIONS = ("torch", "torchvision", "hydra-core", "omegaconf", "pyyaml")
#: Environment variables that move the files planning reads (the hub cache, ``~``); ``EAN_*`` too.
ENVIRONMENT = ("HOME", "TORCH_HOME", "XDG_CACHE_HOME")
#: The files of a config folder.
CONFIG_SUFFIXES = (".yaml", ".yml")


class PlanCache:
    """The cached plan of one invocation's planning inputs.

    Args:
        spec: the study as selected (``runners.run.select``).
        profile: the profile's overrides.
        cli_overrides: the command line's overrides.
        seeds: the seeds.
        base: the working folder.
        require_files: whether the data and weights must be on this machine.
        profile_name: the profile's name.
        conf_dirs: the config folders composition searches (``runners.conf_dirs.search_path``).
        folder: another cache folder (tests).
    """

    def __init__(
        self,
        spec: StudySpec,
        profile: list[str],
        cli_overrides: list[str],
        seeds: list[int],
        base: Path,
        require_files: bool,
        profile_name: str | None,
        conf_dirs: list[Path],
        folder: Path | None = None,
    ):
        self.spec = spec
        self.key = {
            "spec": json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str),
            "profile": [list(profile), profile_name],
            "overrides": list(cli_overrides),
            "seeds": list(seeds),
            "base": str(Path(base).resolve()),
            "require_files": require_files,
            "code": code_signature(),
            "conf": tree_signature(conf_dirs, CONFIG_SUFFIXES),
            "plugins": [[f"{e.name}={e.value}", plugin_signature(e.module)] for e in plugin_entry_points()],
            "versions": [sys.version, ean.__version__, *(_version(d) for d in DISTRIBUTIONS)],
            "environment": sorted((k, v) for k, v in os.environ.items() if k in ENVIRONMENT or k.startswith("EAN_")),
        }
        self.cache = DiskCache("plan", folder)
        self.files: dict[str, Any] = {}

    def load(self) -> list[Trial] | None:
        """The cached trials (fresh objects, state ``new``), or None: no entry, or a file it read has changed."""
        entry = self.cache.get(self.key)
        if not isinstance(entry, dict) or not unchanged(entry["files"]):
            return None
        self.files = entry["files"]
        entry = copy.deepcopy(entry)  # the cache's own copy stays as stored
        views = {c: self.spec.on_dataset(c) for c in self.spec.columns_of_data}
        return [_trial(self.spec.name, views[t["column"]], t) for t in entry["trials"]]

    def save(self, trials: list[Trial], read: dict[str, list | None] | None = None) -> None:
        """Keeps ``trials`` (with their counts, where counted) under the key, with the files planning read
        (``read``, from ``ean.files_read.recording``: each as it was before it was read; kept from an earlier
        save or load when None) and the absolute paths of the trials' configs. Nothing is kept when a config
        does not survive JSON as it is."""
        if read is not None:
            extra = {p for t in trials for p in _paths(t.config)} - set(read)
            self.files = dict(sorted({**read, **{p: file_signature(p) for p in extra}}.items()))
        entries = [_entry(t) for t in trials]
        if json.loads(json.dumps(entries)) != entries:
            return
        self.cache.put(self.key, {"trials": entries, "files": self.files})


def code_signature(packages: tuple[str, ...] = CODE_PACKAGES) -> str:
    """A digest of the source files of ``packages`` (relative path, size, mtime): a changed file, an added or
    a removed one changes it."""
    folders = []
    for name in packages:
        found = importlib.util.find_spec(name)
        folders += list(found.submodule_search_locations or []) if found else []
    return tree_signature([Path(f) for f in folders], (".py",))


def plugin_signature(module: str) -> str:
    """A digest of a plugin's top-level package (its code and its ``conf/`` files), or of its module's file
    when the entry point names a top-level module."""
    try:
        found = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin:
        return "not found"
    if found.submodule_search_locations:
        return tree_signature([Path(p) for p in found.submodule_search_locations], (".py", *CONFIG_SUFFIXES))
    return json.dumps(file_signature(found.origin))


def tree_signature(folders: list[Path], suffixes: tuple[str, ...]) -> str:
    """A digest of the files ending in ``suffixes`` under ``folders``, linked folders too
    (``runners.file_tree.files_under``): each file's path and ``file_signature``."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in files_under(folder, suffixes):
            digest.update(f"{path}:{file_signature(str(path))}\n".encode())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return f"{distribution}=={version(distribution)}"
    except PackageNotFoundError:
        return f"{distribution}: none"


def _paths(value: Any) -> set[str]:
    """The absolute paths among a config's strings."""
    if isinstance(value, dict):
        return {p for v in value.values() for p in _paths(v)}
    if isinstance(value, list | tuple):
        return {p for v in value for p in _paths(v)}
    return {value} if isinstance(value, str) and os.path.isabs(value) else set()


def _entry(trial: Trial) -> dict[str, Any]:
    counts = trial.counts
    return {
        "row": trial.row.id,
        "seed": trial.seed,
        "config": trial.config,
        "key": trial.key,
        "data_fingerprint": trial.data_fingerprint,
        "recipe": trial.recipe,
        "evaluates": trial.evaluates,
        "column": trial.column,
        "counts": [counts.params, counts.macs] if counts is not None else None,
        "key_inputs": trial.key_inputs,
    }


def _trial(study: str, view: StudySpec, entry: dict[str, Any]) -> Trial:
    counts = entry["counts"]
    return Trial(
        study,
        view.row(entry["row"]),
        entry["seed"],
        entry["config"],
        entry["key"],
        entry["data_fingerprint"],
        entry["recipe"],
        counts=ModelCounts(*counts) if counts else None,
        evaluates=entry["evaluates"],
        column=entry["column"],
        key_inputs=entry.get("key_inputs"),
    )
