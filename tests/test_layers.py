"""The layers of DESIGN.md, read from the source: imports only go down, and every MLflow name has one home."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: What each layer must never import (top-level package names).
FORBIDDEN = {
    "ean": {"ray", "mlflow", "hydra", "omegaconf", "runners", "reports", "study"},
    "study": {"runners", "reports", "ean", "torch", "ray", "mlflow", "hydra"},
    "reports": {"runners", "ray", "hydra"},
}
SCHEMA = REPO / "study" / "mlflow_schema.py"


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_only_go_down(layer):
    offending = {
        str(path.relative_to(REPO)): sorted(imported(path) & FORBIDDEN[layer])
        for path in sources(layer)
        if imported(path) & FORBIDDEN[layer]
    }
    assert offending == {}


def test_runners_use_reports_only_to_make_the_report():
    uses = {
        str(path.relative_to(REPO))
        for path in sources("runners")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.split(".")[0] == "reports"
        and node.module != "reports.make"
    }
    assert uses == set()


def test_no_raw_mlflow_tag_names_outside_the_schema():
    """Every "ean.*" tag the runner writes or the reports read, and every MLflow system tag ("mlflow.*"), is a
    constant of study.mlflow_schema."""
    raw = []
    for package in ("runners", "reports", "study"):
        for path in sources(package):
            if path == SCHEMA:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
                if text.startswith(("ean.", "mlflow.")):
                    raw.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert raw == []
