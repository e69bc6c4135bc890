"""Unknown-key checks shared by the config sections of ``ean`` (model, trainer): one message format."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def check_known_keys(section: str, given: Iterable[str], valid: Iterable[str], error: type[Exception]) -> None:
    """Raises ``error`` naming every unknown key of a config section, its closest valid key, and all valid keys.

    Args:
        section: the section's name as printed (``"model"``, ``"trainer"``).
        given: the keys of the config section.
        valid: the keys the section accepts, in the order to print them.
        error: the exception class to raise.
    """
    valid = list(valid)
    unknown = sorted(set(given) - set(valid))
    if not unknown:
        return
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=1)
        parts.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise error(f"unknown {section} key {', '.join(parts)}; valid keys: {', '.join(valid)}")
