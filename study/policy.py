"""Specs are data: a study file, a command-line override or a composed config chooses among registered names
and values; it never names Python code, calls a resolver (which could read the environment or files) or
changes Hydra's own settings (its search path would compose group files from any folder).

Plain interpolations (``${model.num_segments}``) are data and allowed; ``${name:...}`` is a resolver call,
whatever its spacing (``${ oc.env:HOME}``).
"""

from __future__ import annotations

import re
from typing import Any

#: Keys that make Hydra instantiate Python objects.
CODE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
_RESOLVER_CALL = re.compile(r"\$\{\s*[\w.\-]+\s*:")
_HYDRA_KEY = re.compile(r"^[+~]*hydra(\.|/|=|$)")


def text_problem(text: str) -> str | None:
    """Why a string may not stand in a spec (None when it may)."""
    for key in CODE_KEYS:
        if key in text:
            return f"contains {key!r}: it would name Python code"
    if _RESOLVER_CALL.search(text):
        return "calls a resolver (${name:...}): it could read the environment or files"
    return None


def override_problem(override: str) -> str | None:
    """Why a Hydra override may not be used (None when it may)."""
    if _HYDRA_KEY.match(override.strip()):
        return "sets Hydra's own settings (hydra.*): a spec chooses among the project's config groups only"
    return text_problem(override)


def value_problems(value: Any, path: str = "") -> list[str]:
    """Every entry of a loaded document (spec or composed config) that breaks the policy, with its path."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in CODE_KEYS:
                found.append(f"'{where}' names Python code; specs choose registered names only")
            found += value_problems(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += value_problems(item, f"{path}[{i}]")
    elif isinstance(value, str):
        problem = text_problem(value)
        if problem:
            found.append(f"'{path}' = {value!r} {problem}")
    return found
