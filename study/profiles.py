"""Profiles: named override sets a run asks for with ``--profile NAME`` (e.g. ``smoke``).

A shared profile lives in ``studies/profiles/<name>.yaml`` (``description`` and ``overrides``; the folder is
``study.locations.PROFILES_DIR``, installed with the package) and serves every study; a spec's
``profiles: {name: [overrides]}`` refines it (its overrides come after the shared ones) or defines a profile
of its own. A profile's overrides come after the spec's and before the row's.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from study.locations import PROFILES_DIR
from study.policy import find_problems
from study.spec import SpecError, StudySpec

KEYS = ("description", "overrides")


def shared_profiles(folder: Path = PROFILES_DIR) -> list[str]:
    """The names of the shared profiles."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_shared(name: str, folder: Path = PROFILES_DIR) -> tuple[str, ...]:
    """The overrides of shared profile ``name`` (checked as a spec's are).

    Raises:
        SpecError: the file is not a mapping of ``description`` and a list of ``overrides``, or an override
            breaks the data-only policy.
    """
    path = folder / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) - set(KEYS) or not isinstance(data.get("overrides"), list):
        raise SpecError(f"{path}: a profile is a mapping of {' and '.join(KEYS)} (a list of Hydra overrides)")
    overrides = data["overrides"]
    if not all(isinstance(o, str) for o in overrides):
        raise SpecError(f"{path}: overrides must be strings, got {overrides!r}")
    problems = find_problems(overrides, lambda where: len(where) == 1)
    if problems:
        raise SpecError(f"{path}: " + "; ".join(f"overrides[{where[0]}]: {why}" for where, why in problems))
    return tuple(overrides)


def profile_names(spec: StudySpec, folder: Path = PROFILES_DIR) -> list[str]:
    """Every profile ``spec`` may run with: the shared ones and its own."""
    return sorted({*shared_profiles(folder), *spec.profiles})


def profile_overrides(spec: StudySpec, name: str, folder: Path = PROFILES_DIR) -> list[str]:
    """The overrides of profile ``name`` for ``spec``: the shared profile's, then the spec's refinement.

    Raises:
        SpecError: neither the shared profiles nor the spec have ``name``; the message lists the valid ones.
    """
    shared = load_shared(name, folder) if name in shared_profiles(folder) else None
    if shared is None and name not in spec.profiles:
        valid = ", ".join(profile_names(spec, folder)) or "(none)"
        raise SpecError(f"{spec.source}: unknown profile '{name}'; valid profiles: {valid}")
    return [*(shared or ()), *spec.profiles.get(name, ())]
