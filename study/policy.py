"""Specs are data: a study file, a command-line override or a composed config chooses among registered names
and values; it never names Python code, calls a resolver (which could read the environment or files) or
changes Hydra's own settings (its search path would compose group files from any folder).

Plain interpolations (``${model.num_segments}``) are data and allowed; ``${name:...}`` is a resolver call,
whatever its spacing (``${ oc.env:HOME}``, ``${oc.env :HOME}``), nesting (``${a.${oc.env:X}}``) or escaping
(``\\${oc.env:X}`` resolves to the text of a call, which a later config would run).

One walker, ``find_problems``, applies these rules to every document: a spec (its override lists by the
override rule, every other string by the text rule), a composed config (before resolving, and again after)
and the group files of the config folder. ``override_problem`` checks one override on its own (command line,
or every override just before Hydra composes it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from omegaconf import grammar_parser
from omegaconf.errors import GrammarParseError
from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser

#: Keys that make Hydra instantiate Python objects.
CODE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
#: Hydra's own config node (and group root): ``hydra.searchpath``, ``hydra/job_logging``, ``group@hydra``.
HYDRA_NODE = "hydra"

#: A resolver call: ``${`` then a name of any characters but braces and colons (whitespace of any kind
#: included, so every spacing normalises to the same call), possibly with interpolated parts (``${${x}:...}``),
#: then ``:``. Deliberately broader than OmegaConf's grammar, and blind to escapes (``\${...}``).
_RESOLVER_CALL = re.compile(r"\$\{[^{}:]*(?:\$\{[^{}]*\}[^{}:]*)*:")
_WHITESPACE = re.compile(r"\s+")

#: A place in a document: its keys and list indices from the root.
Where = tuple[Any, ...]

CODE_PROBLEM = "names Python code: specs and configs choose registered names only"
RESOLVER_PROBLEM = "calls a resolver (${name:...}): it could read the environment or files"
HYDRA_PROBLEM = "sets Hydra's own settings (hydra.*): a spec chooses among the project's config groups only"


def text_problem(text: str) -> str | None:
    """Why a string may not stand in a spec or a config (None when it may)."""
    for key in CODE_KEYS:
        if key in text:
            return f"contains {key!r}: it {CODE_PROBLEM}"
    if _calls_resolver(text):
        return RESOLVER_PROBLEM
    return None


DELETION_PROBLEM = (
    "deletes a key (ean's default would then apply, unseen in the plan): an override is KEY=VALUE; choose the "
    "value instead (e.g. block=none)"
)


def override_problem(override: str) -> str | None:
    """Why a Hydra override may not be used (None when it may)."""
    if _sets_hydra(override):
        return HYDRA_PROBLEM
    if override.lstrip().startswith("~"):
        return DELETION_PROBLEM
    return text_problem(override)


def find_problems(
    value: Any, is_override: Callable[[Where], bool] = lambda where: False, where: Where = ()
) -> list[tuple[Where, str]]:
    """Every entry of a document (spec, composed config, group file) that breaks the policy: its place and
    why. Strings at places where ``is_override`` holds are Hydra overrides (checked by ``override_problem``);
    every other string, and every key, is checked by ``text_problem``."""
    found: list[tuple[Where, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*where, key)
            if key in CODE_KEYS:
                found.append((here, f"key {key!r} {CODE_PROBLEM}"))
            elif isinstance(key, str) and (problem := text_problem(key)):
                found.append((here, f"key {key!r} {problem}"))
            found += find_problems(item, is_override, here)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += find_problems(item, is_override, (*where, i))
    elif isinstance(value, str):
        problem = override_problem(value) if is_override(where) else text_problem(value)
        if problem:
            found.append((where, f"{value!r} {problem}"))
    return found


def value_problems(value: Any, path: str = "") -> list[str]:
    """``find_problems`` of a config, each as ``'model.secret': '${oc.env:X}' calls a resolver ...``."""
    prefix = (path,) if path else ()
    return [f"'{dotted((*prefix, *where))}': {problem}" for where, problem in find_problems(value)]


def dotted(where: Where) -> str:
    """``("rows", 0, "overrides", 1)`` -> ``rows[0].overrides[1]``."""
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


# -- the rules -----------------------------------------------------------------------------------------


def _calls_resolver(text: str) -> bool:
    if _RESOLVER_CALL.search(text):
        return True
    if "${" not in text:
        return False
    try:  # OmegaConf's own reading: finds calls whose name is built by interpolation (``${${a.${b}}:x}``)
        tree = grammar_parser.parse(text, parser_rule="configValue")
    except GrammarParseError:
        return False  # OmegaConf cannot read it as an interpolation, so it calls nothing
    return _has_resolver(tree)


def _has_resolver(node: Any) -> bool:
    if isinstance(node, OmegaConfGrammarParser.InterpolationResolverContext):
        return True
    return any(_has_resolver(node.getChild(i)) for i in range(node.getChildCount()))


def _sets_hydra(override: str) -> bool:
    """Whether an override's key, group or package is Hydra's node, whatever its prefix (``+``, ``++``, ``~``)
    or spacing: ``hydra.searchpath=...``, ``hydra/job_logging=none``, ``~hydra.x``, ``block@hydra=eab``."""
    key = _WHITESPACE.sub("", override).split("=", 1)[0].lstrip("+~/")
    group, _, package = key.partition("@")
    package = package.removeprefix("_global_").lstrip(".")
    return any(re.split(r"[./]", part.lower())[0] == HYDRA_NODE for part in (group, package) if part)
