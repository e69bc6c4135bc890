"""benchmarks/RESULTS.md: each benchmark owns one section between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

from results_file import record_section
record_section("training", "## Training ...\n\nfigures")   # replaces that section, keeps every other one
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replaces the section ``name`` of ``path`` with ``text`` (appends it when absent), keeping the others."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{start}\n{text}\n{end}"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)
