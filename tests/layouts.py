"""Annotation-only dataset layouts: what planning reads (labels, split lists, media folders), nothing decoded.

Used by the runner's tests and by ``benchmarks/paper_reuse.py``; plain functions, no pytest.
"""

from __future__ import annotations

from pathlib import Path


def something_v1_layout(root: Path, num_classes: int = 174) -> Path:
    """A Something V1 layout (labels, train and validation CSVs, two empty frame folders) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"class {i}" for i in range(num_classes)]
    (root / "labels.csv").write_text("\n".join(names) + "\n")
    (root / "train.csv").write_text(f"1;{names[0]}\n")
    (root / "validation.csv").write_text(f"2;{names[-1]}\n")
    for vid in ("1", "2"):
        (root / "frames" / vid).mkdir(parents=True, exist_ok=True)
    return root
