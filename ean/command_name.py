"""The name a command was started by, for its usage line and the commands it prints back."""

from __future__ import annotations

import sys
from pathlib import Path

#: The console scripts' common prefix (``pyproject.toml``: ``ean-run``, ``ean-profile``, ...).
CONSOLE_PREFIX = "ean-"


def command_name(module_form: str) -> str:
    """``ean-run`` when the process was started by that console script, else ``module_form``
    (``python -m runners.run``): each console script is the same command as its ``python -m`` form."""
    name = Path(sys.argv[0]).name
    return name if name.startswith(CONSOLE_PREFIX) else module_form
