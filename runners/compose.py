"""Study rows -> resolved trial configs, composed with Hydra's Compose API from ``studies/conf``.

Order of the overrides, later winning: the spec's common overrides, the profile's, the row's, the command
line's, then the seed. Hydra runs here, on the driver only; trials receive plain dicts.

The data-only policy (``study.policy``) holds before anything is resolved: the config folder's files are
checked when Hydra is initialised on it (a resolver in a defaults list would run while Hydra composes),
every override before Hydra reads it, and the composed tree before ``OmegaConf`` resolves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from study.policy import HYDRA_NODE, override_problem, value_problems

CONF_DIR = Path(__file__).resolve().parents[1] / "studies" / "conf"
PRIMARY = "config"


class CompositionError(ValueError):
    """A row's overrides do not compose; the message says which override and the valid choices."""


@contextmanager
def hydra_context(conf_dir: Path = CONF_DIR) -> Iterator[None]:
    """Initialises Hydra on ``conf_dir`` for the block (clearing any earlier initialisation).

    Raises:
        CompositionError: a file of ``conf_dir`` breaks the data-only policy (before Hydra reads any).
    """
    problems = conf_problems(conf_dir)
    if problems:
        raise CompositionError(f"{conf_dir} breaks the data-only policy: " + "; ".join(problems))
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        yield


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The option names of a config group (its file names without ``.yaml``)."""
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def conf_problems(conf_dir: Path) -> list[str]:
    """Every entry of the config folder's YAML files that breaks the data-only policy (``file: key: why``),
    Hydra's own node included: a group file chooses values; it neither calls resolvers nor sets Hydra."""
    found = []
    for path in sorted(conf_dir.rglob("*.yaml")):
        name = path.relative_to(conf_dir)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            found.append(f"{name}: cannot be read as YAML ({_first_line(err)})")
            continue
        found += [f"{name}: {p}" for p in value_problems(data)]
        if isinstance(data, dict) and HYDRA_NODE in data:
            found.append(f"{name}: '{HYDRA_NODE}' sets Hydra's own settings")
        for entry in data.get("defaults", []) if isinstance(data, dict) else []:
            choice = "=".join(map(str, next(iter(entry.items())))) if isinstance(entry, dict) and entry else str(entry)
            if override_problem(choice.removeprefix("override ")):
                found.append(f"{name}: defaults entry {choice!r} sets Hydra's own settings")
    return found


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """Composes the primary config with ``overrides`` (inside ``hydra_context``) into a plain dict.

    Every override is checked before Hydra reads it, and the composed tree before it is resolved: a
    resolver (``${oc.env:...}``) never runs, whichever file or override brought it in.
    """
    for override in overrides:
        problem = override_problem(override)
        if problem:
            raise CompositionError(f"override '{override}' {problem}")
    try:
        cfg = compose(PRIMARY, overrides=list(overrides))
        problems = value_problems(OmegaConf.to_container(cfg, resolve=False))
        if problems:
            raise CompositionError("the composed config (before resolving): " + "; ".join(problems))
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingConfigException as err:
        raise CompositionError(_missing_option(err, overrides)) from None
    except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException) as err:
        raise CompositionError(_first_line(err)) from None


def _missing_option(err: MissingConfigException, overrides: list[str]) -> str:
    missing = getattr(err, "missing_cfg_file", "") or ""
    group, _, name = missing.rpartition("/")
    if group:
        culprit = next((o for o in overrides if o.split("=", 1)[0].lstrip("+~") == group), f"{group}={name}")
        choices = ", ".join(group_options(group))
        return f"unknown {group} '{name}' (override '{culprit}'); valid {group} options: {choices}"
    return _first_line(err)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if "Could not override" in text:
        key = text.split("'")[1] if "'" in text else "?"
        return f"unknown config key '{key}' (override '{key}=...'); check its spelling against studies/conf"
    return lines[0] if lines else type(err).__name__
