"""Study rows -> resolved trial configs, composed with Hydra's Compose API from ``studies/conf``.

The config folders (``runners.conf_dirs.search_path``) form Hydra's search path: the project's
``studies/conf``, the user's ``--config-dir`` folders, the installed plugins' ``conf/`` folders. A folder adds
options to the groups (``DIR/block/my_block.yaml`` -> ``block=my_block``); it may not shadow another folder's
file (the same path in two folders is refused, as a registry refuses a duplicate name), so the order decides
nothing.

Order of the overrides, later winning: the spec's common overrides, the profile's, the row's, the command
line's, then the seed. Hydra runs here, on the driver only; trials receive plain dicts.

The data-only policy (``study.policy``) holds before anything is resolved: every config folder's files are
checked when Hydra is initialised on them (a resolver in a defaults list would run while Hydra composes),
every override before Hydra reads it, and the composed tree before ``OmegaConf`` resolves it.

A study composes one config per (row, seed): an override in Hydra's sweep syntax (``a=1,2``, ``range``,
``choice``, ``glob``, ``interval``) is refused (``sweep_problem``, told by Hydra's own override parser), with
the rows that would run its values.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Iterator, Sequence
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
from runners.conf_dirs import CompositionError, ConfDirs, check_conf_dirs, conf_dirs, yaml_files
from study.policy import override_problem, value_problems

PRIMARY = "config"
#: How many rows the refusal of a sweep writes out (the others are counted).
SWEEP_ROWS_SHOWN = 4
#: How many values of a sweep are counted at most (``range(0, 10**9)`` is not enumerated).
SWEEP_VALUES_COUNTED = 1000


#: The folders of the active ``hydra_context`` (the first is Hydra's main folder, the others its search path).
_active: list[Path] = []


@contextmanager
def hydra_context(conf_dir: ConfDirs = None) -> Iterator[None]:
    """Initialises Hydra on the config folders for the block (clearing any earlier initialisation): the first is
    Hydra's main folder, the others join its search path. None: ``search_path()``.

    Raises:
        CompositionError: a folder's file breaks the data-only policy (before Hydra reads any), or two folders
            hold the same file.
    """
    folders = conf_dirs(conf_dir)
    check_conf_dirs(folders)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(folders[0].resolve()), version_base="1.3"):
        _active[:] = folders
        try:
            yield
        finally:
            _active.clear()


class Composer:
    """Composes trial configs from the config folders (``conf_dir``: one, several, or None for ``search_path()``)
    with ``compose_config``, each once: a result is kept in the on-disk cache (``runners.cache``) under the
    folders' contents, the overrides and Hydra's version, so a plan composed before is read back without
    starting Hydra (a dry run of a planned study), and a changed file of any folder is composed afresh. Use it as
    a context manager.

    Raises:
        CompositionError: a folder breaks the data-only policy, or two hold one file (checked when it is made).
    """

    def __init__(self, conf_dir: ConfDirs = None, cache: DiskCache | None = None):
        folders = conf_dirs(conf_dir)
        check_conf_dirs(folders)
        self.conf_dir, self.digest = folders, conf_digest(folders)
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


def conf_digest(conf_dir: Path | Sequence[Path]) -> str:
    """The sha256 of the config folders' YAML files (names and contents), folder by folder."""
    digest = hashlib.sha256()
    for index, folder in enumerate(conf_dirs(conf_dir)):
        for path in yaml_files(folder):
            name = str(path.relative_to(folder)) if index == 0 else f"{index}/{path.relative_to(folder)}"
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def check_overrides(overrides: list[str]) -> None:
    """CompositionError for the first override that breaks the data-only policy or asks for a sweep."""
    for override in overrides:
        problem = override_problem(override) or sweep_problem(override)
        if problem:
            raise CompositionError(f"override '{override}' {problem}")


def group_options(group: str, conf_dir: ConfDirs = None) -> list[str]:
    """The option names of a config group (its file names without ``.yaml``) over the config folders (None: those
    of the active ``hydra_context``, else ``search_path()``)."""
    folders = conf_dirs(conf_dir if conf_dir is not None else (list(_active) or None))
    return sorted({p.stem for folder in folders for p in (folder / group).glob("*.yaml")})


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """Composes the primary config with ``overrides`` (inside ``hydra_context``) into a plain dict.

    Every override is checked before Hydra reads it, and the composed tree before it is resolved: a
    resolver (``${oc.env:...}``) never runs, whichever file or override brought it in.
    """
    check_overrides(overrides)
    unknown = unknown_choices(overrides)
    if unknown:  # each one, not only the first Hydra meets
        raise CompositionError("; ".join(unknown), unknown)
    try:
        cfg = compose(PRIMARY, overrides=[*overrides, *_searchpath_override()])
        problems = value_problems(OmegaConf.to_container(cfg, resolve=False))
        if problems:
            raise CompositionError("the composed config (before resolving): " + "; ".join(problems))
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingConfigException as err:
        raise CompositionError(_missing_option(err, overrides)) from None
    except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException) as err:
        why = _unknown_key(err, overrides) or _syntax_error(err, overrides) or _added_again(err, overrides)
        raise CompositionError(why or _first_line(err)) from None
    except ValueError as err:  # Hydra's defaults list on a malformed group override
        raise CompositionError(f"{_first_line(err)} (overrides: {' '.join(overrides)})") from None


def unknown_choices(overrides: list[str]) -> list[str]:
    """Each config group that ``overrides`` set to an option it lacks (the last setting of a group, the one Hydra
    keeps), with the closest option and the valid ones."""
    last: dict[str, tuple[str, str]] = {}
    for item in overrides:
        key, eq, value = item.partition("=")
        group = key.lstrip("+")
        if eq and not key.startswith("~") and re.fullmatch(r"\w+", group):
            last[group] = (item, value.strip())
    problems = []
    for group, (item, value) in last.items():
        options = group_options(group)
        if options and re.fullmatch(r"[\w.-]+", value) and value not in (*options, "null"):
            close = difflib.get_close_matches(value, options, n=1)
            hint = f" (did you mean '{group}={close[0]}'?)" if close else ""
            problems.append(
                f"unknown {group} '{value}' (override '{item}'){hint}; valid {group} options: {', '.join(options)}"
            )
    return problems


def _syntax_error(err: Exception, overrides: list[str]) -> str | None:
    """For Hydra's parse errors: the override that does not parse, named, with the parser's reason; None for any
    other error."""
    if not isinstance(err, OverrideParseException):
        return None
    parser = OverridesParser.create()
    for item in overrides:
        try:
            parser.parse_overrides([item])
        except OverrideParseException as bad:
            return f"override '{item}' is not an override Hydra can read ({_first_line(bad)}): write KEY=VALUE, " \
                "e.g. trainer.lr=0.01 or block=eab"  # fmt: skip
    return None


def _added_again(err: Exception, overrides: list[str]) -> str | None:
    """For Hydra's "Could not append to config. An item is already at 'a.b'": the override that adds a key the
    config has, and the same override without its '+'; None for any other error."""
    match = re.search(r"An item is already at '([^']+)'", str(err))
    if not match:
        return None
    key = match.group(1)
    given = next((o for o in overrides if o.split("=", 1)[0] == f"+{key}"), f"+{key}=...")
    return f"override '{given}' adds {key}, which the config has already: drop the '+' ({given[1:]})"


def _unknown_key(err: Exception, overrides: list[str]) -> str | None:
    """For Hydra's "Could not override 'a.b'": the key, its closest valid key and the valid keys of ``a`` (the
    config composed without the override that named it); None for any other error."""
    match = re.search(r"Could not override '([^']+)'", str(err))
    if not match:
        return None
    key = match.group(1)
    parent, _, leaf = key.rpartition(".")
    section, _, below = key.partition(".")
    rest = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
    try:
        config = compose(PRIMARY, overrides=[*rest, *_searchpath_override()])
        node, section_node = OmegaConf.select(config, parent or ""), OmegaConf.select(config, section)
    except (ConfigCompositionException, MissingConfigException, OverrideParseException, OmegaConfBaseException):
        node = section_node = None
    if below and OmegaConf.is_dict(section_node):  # under a key ean takes that the files leave out?
        first = below.split(".")[0]
        if first not in section_node and first in _ean_keys(section, section_node):
            what = "it" if first == below else f"'{section}.{first}'"
            return (
                f"config key '{key}' is valid but the config files leave {what} out (ean's default applies): add it "
                f"with '+{key}=...'"
            )
    valid = [str(k) for k in node] if OmegaConf.is_dict(node) else []
    if not valid:
        return None
    unlisted = sorted(set(_ean_keys(parent, node)) - set(valid))  # ean takes them; the files leave them out
    prefix = f"{parent}." if parent else ""
    written = {k: prefix + k for k in valid} | {k: f"+{prefix}{k}" for k in unlisted}
    close = difflib.get_close_matches(leaf, list(written), n=1)
    hint = f" (did you mean '{written[close[0]]}'?)" if close else ""
    more = f"; with '+' (not in the config files): {', '.join(unlisted)}" if unlisted else ""
    return f"unknown config key '{key}'{hint} (override '{key}=...'); valid keys of {parent or 'the config'}: " + (
        ", ".join(valid) + more
    )


def _ean_keys(section: str, node: Any) -> list[str]:
    """The keys ``ean`` takes in a section of a trial config (``trainer``, ``model``, or ``data`` of the dataset
    ``node`` names); none for any other place."""
    if section == "trainer":
        from ean.train.config import TRAINER_DEFAULTS

        return list(TRAINER_DEFAULTS)
    if section == "model":
        from ean.models.build import MODEL_DEFAULTS

        return list(MODEL_DEFAULTS)
    if section == "data":
        from ean.data.registry import DATASETS
        from ean.trial import data_keys

        dataset = OmegaConf.to_container(node, resolve=False).get("dataset")  # never resolved: data only
        return data_keys(dataset) if isinstance(dataset, str) and dataset in DATASETS.names() else []
    return []


def _searchpath_override() -> list[str]:
    """Hydra's ``hydra.searchpath`` override that adds the active context's folders after its main one (none for
    one folder). Added here, after the policy check that refuses ``hydra.*`` overrides of specs and users."""
    if len(_active) < 2:
        return []
    quoted = ["'" + f"file://{d.resolve()}".replace("\\", "\\\\").replace("'", "\\'") + "'" for d in _active[1:]]
    return [f"hydra.searchpath=[{','.join(quoted)}]"]


def sweep_problem(override: str, conf_dir: ConfDirs = None) -> str | None:
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


def _sweep_values(parsed: Override, conf_dir: ConfDirs) -> tuple[list[str], bool]:
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
        sets = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") == group]  # the last one wins in Hydra
        naming = [o for o in sets if o.split("=", 1)[-1] == name]
        culprit = (naming or sets or [f"{group}={name}"])[-1]
        options = group_options(group)
        close = difflib.get_close_matches(name, options, n=1)
        hint = f" (did you mean '{group}={close[0]}'?)" if close else ""
        return f"unknown {group} '{name}' (override '{culprit}'){hint}; valid {group} options: {', '.join(options)}"
    return _first_line(err)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if "Could not override" in text:
        key = text.split("'")[1] if "'" in text else "?"
        return f"unknown config key '{key}' (override '{key}=...'); check its spelling against studies/conf"
    return lines[0] if lines else type(err).__name__
