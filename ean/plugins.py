"""Variants from a researcher's own package: the ``ean.plugins`` entry-point group.

A plugin distribution declares, in its ``pyproject.toml``::

    [project.entry-points."ean.plugins"]
    my_blocks = "my_package.blocks"            # a module: importing it registers its variants
    # or: my_blocks = "my_package.blocks:register"   a function, called once with no arguments

and registers with the project's decorators (``@BLOCKS.register("my_block")``, ``FUSIONS``, ``REGIONS``,
``MOTIONS``, ``BACKBONES``, ``DATASETS``). The registry rules hold: a name already registered (by the project or another
plugin) is a ``DuplicateNameError`` naming the entry point; a variant that breaks its family's contract a
``ContractError``. Config group files ship beside the plugin: the ``conf/`` folder of the package that holds
the entry point's module (``my_package/conf/block/my_block.yaml``) joins Hydra's search path
(``plugin_conf_dirs``), under the same data-only policy as the project's ``studies/conf``.

Plugins load once per process, after the project's own variants, the first time any registry is looked up
(``Registry.get``, ``names``, ...): in the driver, in a Ray worker's trial, in a notebook. ``load_plugins``
loads them explicitly (the runner does so first, to report a broken plugin before planning).
"""

from __future__ import annotations

import importlib
import importlib.resources
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from ean.registry import ContractError, DuplicateNameError, RegistryError

#: The entry-point group a plugin distribution declares.
GROUP = "ean.plugins"

_loaded: list[EntryPoint] | None = None
_loading = False


class PluginError(RegistryError):
    """A plugin could not be loaded (its module does not import, or its function raised)."""


def plugin_entry_points() -> list[EntryPoint]:
    """The installed ``ean.plugins`` entry points, sorted by name and value (so every process loads them in one
    order)."""
    return sorted(entry_points(group=GROUP), key=lambda point: (point.name, point.value))


def load_plugins() -> list[EntryPoint]:
    """Imports the project's own variants, then every plugin, once per process.

    Returns:
        The entry points loaded (an empty list while they are loading: a lookup made by a plugin itself).

    Raises:
        DuplicateNameError: a plugin registers a name that is taken; the message names the entry point.
        ContractError: a plugin's variant breaks its family's contract; the message names the entry point.
        PluginError: a plugin does not import, or its function raised; the message names the distribution.
    """
    global _loaded, _loading
    if _loaded is not None or _loading:
        return list(_loaded or [])
    _loading = True
    try:
        import ean.data.datasets  # noqa: F401  the project's own variants register first
        import ean.models  # noqa: F401

        points = plugin_entry_points()
        for point in points:
            _load(point)
        _loaded = points
    finally:
        _loading = False
    return list(points)


def describe(point: EntryPoint) -> str:
    """``entry point 'name = value' of distribution 'dist version'`` (group ``ean.plugins``)."""
    dist = getattr(point, "dist", None)
    owner = f"distribution '{dist.name} {dist.version}'" if dist is not None else "an unknown distribution"
    return f"plugin entry point '{point.name} = {point.value}' (group {GROUP}) of {owner}"


def _load(point: EntryPoint) -> None:
    """Imports ``point`` (and calls it when it names a function); errors say which entry point."""
    try:
        target = point.load()
        if point.attr:
            target()
    except (DuplicateNameError, ContractError) as err:
        raise type(err)(f"{describe(point)}: {err}") from err
    except Exception as err:
        raise PluginError(f"{describe(point)} could not be loaded: {type(err).__name__}: {err}") from err


def plugin_versions(variants: Iterable[object]) -> dict[str, str]:
    """The installed plugin distributions (name: version) whose packages define any of ``variants`` (registered
    classes or factories); empty when none does (every variant the project's own).

    A trial key holds these versions (:func:`ean.trial.trial_key`), as it holds ``ean.__version__``: a plugin's
    author bumps the distribution's version when a variant of theirs computes something else.
    """
    points = load_plugins()  # read once per process (the registry lookups that found the variants loaded them)
    if not points:
        return {}
    owners = {point.module.split(".")[0]: point.dist for point in points if getattr(point, "dist", None)}
    found = {}
    for variant in variants:
        dist = owners.get((getattr(variant, "__module__", None) or "").split(".")[0])
        if dist is not None:
            found[dist.name] = dist.version
    return dict(sorted(found.items()))


def plugin_conf_dirs() -> list[Path]:
    """The ``conf/`` folders of the loaded plugins (each the folder of the package that holds an entry point's
    module), in entry-point order, each once; plugins without one add none. With no plugin installed, nothing
    is imported (the project's variants neither: a cached plan needs no registry)."""
    folders: list[Path] = []
    for point in load_plugins() if plugin_entry_points() else []:
        module = importlib.import_module(point.module)
        package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
        if not package:
            continue  # a top-level module has no package to hold a conf/ folder
        conf = Path(str(importlib.resources.files(package) / "conf"))
        if conf.is_dir() and conf not in folders:
            folders.append(conf)
    return folders
