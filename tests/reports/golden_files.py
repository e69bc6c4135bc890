"""Golden-file comparison: ``UPDATE_GOLDEN=1 python -m pytest tests/reports`` rewrites the files."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"
_RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")


def mask_run_ids(text: str) -> str:
    """Replaces MLflow run ids (32 hex digits; they differ per store) with ``<run-id>``."""
    return _RUN_ID.sub("<run-id>", text)


def check_golden(name: str, text: str) -> None:
    """Asserts ``text`` equals the golden file ``name``; with ``UPDATE_GOLDEN=1`` rewrites the file instead."""
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; create it with UPDATE_GOLDEN=1 python -m pytest tests/reports"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "golden", "generated"))
        raise AssertionError(f"{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it):\n{diff}")
