"""Study rows -> resolved trial configs, composed with Hydra's Compose API from ``studies/conf``.

Order of the overrides, later winning: the spec's common overrides, the profile's, the row's, the command
line's, then the seed. Hydra runs here, on the driver only; trials receive plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONF_DIR = Path(__file__).resolve().parents[1] / "studies" / "conf"
PRIMARY = "config"


class CompositionError(ValueError):
    """A row's overrides do not compose; the message says which override and the valid choices."""


@contextmanager
def hydra_context(conf_dir: Path = CONF_DIR) -> Iterator[None]:
    """Initialises Hydra on ``conf_dir`` for the block (clearing any earlier initialisation)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        yield


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The option names of a config group (its file names without ``.yaml``)."""
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """Composes the primary config with ``overrides`` (inside ``hydra_context``) into a plain dict."""
    try:
        cfg = compose(PRIMARY, overrides=list(overrides))
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
