"""Study rows -> resolved trial configs, composed with Hydra's Compose API from ``studies/conf``.

Order of the overrides, later winning: the spec's common overrides, the profile's, the row's, the command
line's, then the seed. Hydra runs here, on the driver only; trials receive plain dicts.

The data-only policy (``study.policy``) holds before anything is resolved: the config folder's files are
checked when Hydra is initialised on it (a resolver in a defaults list would run while Hydra composes),
every override before Hydra reads it, and the composed tree before ``OmegaConf`` resolves it.

A study composes one config per (row, seed): an override in Hydra's sweep syntax (``a=1,2``, ``range``,
``choice``, ``glob``, ``interval``) is refused (``sweep_problem``, told by Hydra's own override parser), with
the rows that would run its values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import hydra
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, IntervalSweep, Override
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runners.cache import DiskCache
from study.policy import HYDRA_NODE, override_problem, value_problems

CONF_DIR = Path(__file__).resolve().parents[1] / "studies" / "conf"
PRIMARY = "config"
#: How many rows the refusal of a sweep writes out (the others are counted).
SWEEP_ROWS_SHOWN = 4
#: How many values of a sweep are counted at most (``range(0, 10**9)`` is not enumerated).
SWEEP_VALUES_COUNTED = 1000


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


class Composer:
    """Composes trial configs from ``conf_dir`` (``compose_config``), each once: a result is kept in the on-disk
    cache (``runners.cache``) under the folder's contents, the overrides and Hydra's version, so a plan composed
    before is read back without starting Hydra (a dry run of a planned study). Use it as a context manager.

    Raises:
        CompositionError: a file of ``conf_dir`` breaks the data-only policy (checked when it is made).
    """

    def __init__(self, conf_dir: Path = CONF_DIR, cache: DiskCache | None = None):
        problems = conf_problems(conf_dir)
        if problems:
            raise CompositionError(f"{conf_dir} breaks the data-only policy: " + "; ".join(problems))
        self.conf_dir, self.digest = conf_dir, conf_digest(conf_dir)
        self.cache = cache or DiskCache("compose")
        self._hydra: ExitStack | None = None

    def compose(self, overrides: list[str]) -> dict[str, Any]:
        """The resolved config of ``overrides`` (a new dict each call); CompositionError as ``compose_config``."""
        check_overrides(overrides)
        key = {"conf": self.digest, "overrides": list(overrides), "hydra": hydra.__version__, "primary": PRIMARY}
        config = self.cache.get(key)
        if config is None:
            if self._hydra is None:
                self._hydra = ExitStack()
                self._hydra.enter_context(hydra_context(self.conf_dir))
            config = compose_config(overrides)
            self.cache.put(key, config)
        return json.loads(json.dumps(config))

    def __enter__(self) -> Composer:
        return self

    def __exit__(self, *exc) -> None:
        if self._hydra is not None:
            self._hydra.close()
            self._hydra = None


def conf_digest(conf_dir: Path) -> str:
    """The sha256 of the config folder's YAML files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(conf_dir.rglob("*.yaml")):
        digest.update(str(path.relative_to(conf_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def check_overrides(overrides: list[str]) -> None:
    """CompositionError for the first override that breaks the data-only policy or asks for a sweep."""
    for override in overrides:
        problem = override_problem(override) or sweep_problem(override)
        if problem:
            raise CompositionError(f"override '{override}' {problem}")


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
    check_overrides(overrides)
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


def sweep_problem(override: str, conf_dir: Path = CONF_DIR) -> str | None:
    """Why ``override`` cannot stand in a study because it asks Hydra for several values (None when it asks for
    one), with a YAML snippet of spec rows, one per value.

    Hydra's own parser tells a sweep (``a=1,2``, ``a=range(1,4)``, ``a=choice(x,y)``, ``block=glob(*)``,
    ``a=interval(0,1)``) from one value (``a='1,2'``, ``a=[1,2]``). An override it cannot parse is left to
    ``compose_config``, which reports Hydra's reason.
    """
    try:
        parsed = OverridesParser.create().parse_overrides([override])[0]
    except OverrideParseException:
        return None
    if not parsed.is_sweep_override():
        return None
    key = parsed.get_key_element()
    values, counted = _sweep_values(parsed, conf_dir)
    if counted:
        many = len(values) > SWEEP_VALUES_COUNTED
        what = f"{SWEEP_VALUES_COUNTED}+ values" if many else f"{len(values)} values"
        head = "write the values as rows of the spec"
    else:  # an interval, or a glob that matches no option: nothing to enumerate
        what, head = "values to be chosen", "choose the values and write them as rows of the spec, e.g."
    return (
        f"is a Hydra sweep ({what}); a study runs one config per row and seed and does not sweep: {head} "
        f"(each a trial per seed, cached and reported like any row):\n{_sweep_rows(key, values)}"
    )


def _sweep_values(parsed: Override, conf_dir: Path) -> tuple[list[str], bool]:
    """The sweep's values as override values (at most ``SWEEP_VALUES_COUNTED`` + 1), and whether they are
    its own (False: two placeholders, for an interval or a glob that matches nothing)."""
    value = parsed.value()
    if isinstance(value, IntervalSweep):
        return [str(value.start), str(value.end)], False
    if isinstance(value, Glob):
        matched = value.filter(group_options(parsed.key_or_group, conf_dir))
        return (matched, True) if matched else (["VALUE1", "VALUE2"], False)
    return list(itertools.islice(parsed.sweep_string_iterator(), SWEEP_VALUES_COUNTED + 1)), True


def _sweep_rows(key: str, values: list[str]) -> str:
    """Spec rows (YAML, indented) that run ``key`` at each of ``values``; the first ``SWEEP_ROWS_SHOWN``."""
    leaf = re.split(r"[./@]", key.lstrip("+~"))[-1] or "value"
    lines, ids = ["  rows:"], set()
    for value in values[:SWEEP_ROWS_SHOWN]:
        row_id = re.sub(r"[^a-z0-9]+", "_", f"{leaf}_{value}".lower()).strip("_")
        row_id = row_id if re.match(r"[a-z]", row_id) else f"row_{row_id}"
        while row_id in ids:
            row_id += "_"
        ids.add(row_id)
        choice = f"{key}={value}"
        lines += [
            f"    - id: {row_id}",
            f"      label: {json.dumps(choice)}",
            f"      overrides: {yaml.safe_dump([choice], default_flow_style=True, width=10**6).strip()}",
        ]
    if len(values) > SWEEP_VALUES_COUNTED:
        lines.append("    # ... and a row for each of the other values")
    elif len(values) > SWEEP_ROWS_SHOWN:
        lines.append(f"    # ... and a row for each of the other {len(values) - SWEEP_ROWS_SHOWN} value(s)")
    return "\n".join(lines)


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
