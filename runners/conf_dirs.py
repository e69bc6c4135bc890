"""The config folders a study composes from, and their checks; no Hydra here (a study planned before, read
from the plan cache, needs only these).

The search path (``search_path``): the project's ``studies/conf`` (installed with the package,
``study.locations``), then the user's ``--config-dir`` folders (``use_config_dirs``), then the ``conf/``
folders of the installed plugins (``ean.plugins``). A folder adds options to the groups; it may not shadow
another folder's file (``shadowed_files``), and its files hold data only (``conf_problems``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from ean.plugins import plugin_conf_dirs
from runners.file_tree import files_under
from study.locations import CONF_DIR
from study.policy import HYDRA_NODE, override_problem, value_problems

#: The user's config folders (``--config-dir``), set for the invocation by ``use_config_dirs``.
_user_dirs: list[Path] = []
ConfDirs = Path | Sequence[Path] | None


class CompositionError(ValueError):
    """A row's overrides do not compose; the message says which override and the valid choices.

    Attributes:
        problems: each problem found, where several were (the message joins them); else the message alone.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems) or [message]


def use_config_dirs(dirs: Sequence[Path | str]) -> None:
    """Sets the user's config folders (``--config-dir``) that ``search_path`` adds from now on (replacing any
    set before).

    Raises:
        CompositionError: a folder does not exist.
    """
    folders = [Path(d).expanduser().resolve() for d in dirs]
    missing = [str(d) for d in folders if not d.is_dir()]
    if missing:
        raise CompositionError(f"--config-dir: no such folder: {', '.join(missing)}")
    _user_dirs[:] = folders


def search_path() -> list[Path]:
    """The config folders a study composes from: ``studies/conf``, the ``--config-dir`` folders, the plugins'."""
    folders = [CONF_DIR, *_user_dirs, *plugin_conf_dirs()]
    return list(dict.fromkeys(folders))


def conf_dirs(conf_dir: ConfDirs = None) -> list[Path]:
    """``conf_dir`` as a list of folders: ``search_path()`` for None, one folder, or the folders given."""
    if conf_dir is None:
        return search_path()
    return [Path(conf_dir)] if isinstance(conf_dir, str | Path) else [Path(d) for d in conf_dir]


def check_conf_dirs(folders: list[Path]) -> None:
    """CompositionError when a folder's files break the data-only policy, or two folders hold one file."""
    for folder in folders:
        problems = conf_problems(folder)
        if problems:
            raise CompositionError(f"{folder} breaks the data-only policy: " + "; ".join(problems))
    clashes = shadowed_files(folders)
    if clashes:
        raise CompositionError("config folders may add options, not replace them: " + "; ".join(clashes))


def yaml_files(folder: Path) -> list[Path]:
    """The YAML files under ``folder``, sorted, through linked folders too, as Hydra reads them
    (``runners.file_tree.files_under``)."""
    return files_under(folder, (".yaml",))


def shadowed_files(folders: list[Path]) -> list[str]:
    """Each config file that two of ``folders`` hold (``block/eab.yaml in A and B``): one would hide the other."""
    owners: dict[str, list[Path]] = {}
    for folder in folders:
        for path in yaml_files(folder):
            owners.setdefault(path.relative_to(folder).as_posix(), []).append(folder)
    return [
        f"{name} is in {' and '.join(map(str, where))} (give yours another name)"
        for name, where in owners.items()
        if len(where) > 1
    ]


def conf_problems(conf_dir: Path) -> list[str]:
    """Every entry of the config folder's YAML files that breaks the data-only policy (``file: key: why``),
    Hydra's own node included: a group file chooses values; it neither calls resolvers nor sets Hydra."""
    found = []
    for path in yaml_files(conf_dir):
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


def _first_line(err: Exception) -> str:
    """The first non-blank line of the error's message (its type's name when there is none)."""
    return next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
