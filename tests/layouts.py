"""Annotation-only dataset layouts: what planning reads (labels, split lists, media folders), nothing decoded.

Used by the runner's tests and by ``benchmarks/paper_reuse.py``; plain functions, no pytest.
"""

from __future__ import annotations

import json
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


def something_v2_layout(root: Path, num_classes: int = 174) -> Path:
    """A Something V2 layout (labels, train and validation JSON, two empty videos) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"class {i}" for i in range(num_classes)]
    (root / "labels.json").write_text(json.dumps({name: str(i) for i, name in enumerate(names)}))
    for split, (vid, name) in {"train": ("1", names[0]), "validation": ("2", names[-1])}.items():
        entry = {"id": vid, "label": name, "template": name, "placeholders": []}
        (root / f"{split}.json").write_text(json.dumps([entry]))
        (root / "videos").mkdir(exist_ok=True)
        (root / "videos" / f"{vid}.webm").touch()
    return root


def kinetics400_layout(root: Path, num_classes: int = 400) -> Path:
    """A Kinetics-400 layout (train and validate CSVs of ``num_classes`` labels, empty clip files) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    header = "label,youtube_id,time_start,time_end,split"
    splits = {"train": range(num_classes), "val": range(1)}
    for split, csv_name in (("train", "train.csv"), ("val", "validate.csv")):
        rows = [f"class {i},{split}{i:03d},0,10,{split}" for i in splits[split]]
        (root / csv_name).write_text("\n".join([header, *rows]) + "\n")
        for i in splits[split]:
            clip = root / split / f"class {i}" / f"{split}{i:03d}_000000_000010.mp4"
            clip.parent.mkdir(parents=True, exist_ok=True)
            clip.touch()
    return root


def diving48_layout(root: Path) -> Path:
    """A Diving48 layout (the V1 train and test lists, one entry each, empty videos; 48 classes) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for split, (vid, label) in {"train": ("a_00001", 0), "test": ("b_00002", 47)}.items():
        entry = {"vid_name": vid, "label": label, "start_frame": 0, "end_frame": 9}
        (root / f"Diving48_{split}.json").write_text(json.dumps([entry]))
        (root / "rgb").mkdir(exist_ok=True)
        (root / "rgb" / f"{vid}.mp4").touch()
    return root
