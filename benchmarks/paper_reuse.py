"""How many (row, seed) cells of the paper's Tables 1 and 5-10 train, once trials are reused across studies.

Plans every paper study (the paper's recipe, 3 seeds) on a Something V1 layout and counts the distinct trial
keys against the cells: a cell whose key another study already planned is reused, not trained. The layout is
a stand-in made here (annotations of 174 classes; nothing is decoded) unless ``--data-root`` names the real
one; the ImageNet weights' file is looked up in torch's hub cache, or a stand-in is placed in a temporary
cache (planning checks that the file is there; it reads nothing from it).

    python benchmarks/paper_reuse.py            # prints the counts
    python benchmarks/paper_reuse.py --record   # also writes the "Reuse across studies" section of RESULTS.md

Figures: benchmarks/RESULTS.md, section "Reuse across studies".
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from results_file import record_section

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STUDIES = ("table1", "table5", "table6", "table7", "table8", "table9", "table10")


def ensure_weights(scratch: Path) -> None:
    """Points torch's hub cache at a stand-in ResNet-50 IMAGENET1K_V1 file when the real one is absent."""
    from ean.models.pretrained import hub_file

    if hub_file("imagenet1k_v1", "resnet50").is_file():
        return
    os.environ["TORCH_HOME"] = str(scratch / "torch")
    path = hub_file("imagenet1k_v1", "resnet50")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stand-in")


def count(data_root: Path, base: Path) -> list[tuple[str, int, int]]:
    """(study, cells, cells whose key no earlier study planned), in the order of ``STUDIES``."""
    from runners.plan import build_plan
    from study.spec import load_spec

    seen: set[str] = set()
    rows = []
    for study in STUDIES:
        spec = load_spec(REPO / "studies" / f"{study}.yaml")
        trials = build_plan(spec, [], [f"data.root={data_root}"], list(spec.seeds), base)
        new = {t.key for t in trials} - seen
        seen |= new
        rows.append((study, len(trials), len(new)))
    return rows


def report(rows: list[tuple[str, int, int]]) -> str:
    cells = sum(r[1] for r in rows)
    trained = sum(r[2] for r in rows)
    lines = [
        "Trainings of the paper's Tables 1 and 5-10 (3 seeds each) when a trial FINISHED in one study is reused",
        "by the next (studies run in this order; `python benchmarks/paper_reuse.py`):",
        "",
        "| study | (row, seed) cells | trained (key not planned before) | reused |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s} | {c} | {t} | {c - t} |" for s, c, t in rows]
    lines += [
        f"| **all** | **{cells}** | **{trained}** | **{cells - trained}** ({100 * (cells - trained) / cells:.0f}%) |",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, help="a Something V1 layout (default: a stand-in made here)")
    parser.add_argument("--record", action="store_true", help="write the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        ensure_weights(scratch)
        from tests.layouts import something_v1_layout

        root = args.data_root or something_v1_layout(scratch / "something_v1")
        text = report(count(root.resolve(), scratch))
    print(text)
    if args.record:
        record_section("Reuse across studies", "## Reuse across studies\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
