"""LaTeX output: special characters are escaped, and every generated .tex compiles with pdflatex.

The compile tests need ``pdflatex`` on PATH (CI installs texlive-latex-base and texlive-latex-recommended);
they are skipped where it is missing, unless ``EAN_REQUIRE_PDFLATEX=1`` makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.latex import escape_latex, latex_document, render_latex
from reports.table import Cell, Column, Note, Provenance, Table, TableRow
from tests.reports.golden_files import GOLDEN_DIR

PDFLATEX = shutil.which("pdflatex")
if PDFLATEX is None and os.environ.get("EAN_REQUIRE_PDFLATEX") == "1":
    raise RuntimeError("EAN_REQUIRE_PDFLATEX=1 but pdflatex is not on PATH (apt-get install texlive-latex-base ...)")
needs_pdflatex = pytest.mark.skipif(
    PDFLATEX is None,
    reason="pdflatex not on PATH: install texlive-latex-base and texlive-latex-recommended to compile tables",
)

NASTY = "a & b % c $ d # e _ f { g } h ~ i ^ j \\ k <l> 3×3 ± Δ ✓ −1 -2 — ∼ α-β → ≈ Ω Α µ é “q” …"


def compile_tex(path: Path) -> Path:
    """Compiles ``path`` with pdflatex in its directory; fails with the log's errors."""
    result = subprocess.run(
        [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    pdf = path.with_suffix(".pdf")
    errors = [line for line in result.stdout.splitlines() if line.startswith("!")]
    assert result.returncode == 0 and pdf.exists(), f"pdflatex failed on {path.name}: {errors or result.stdout[-2000:]}"
    return pdf


def test_escape_latex_special_characters():
    assert escape_latex("50% & $x_1$ #2 {a}") == r"50\% \& \$x\_1\$ \#2 \{a\}"
    assert escape_latex("a\\b ~ ^") == r"a\textbackslash{}b \textasciitilde{} \textasciicircum{}"
    assert escape_latex("3×3×3 ± ✓") == r"3$\times$3$\times$3 $\pm$ $\surd$"
    assert escape_latex("+S-Block (-0.1) [-1.7, +4.6]") == r"+S-Block ($-$0.1) [$-$1.7, +4.6]"
    assert escape_latex("[CLS] token [x]") == r"{[}CLS] token [x]"  # a cell that begins a line of the tabular


def test_a_character_pdflatex_cannot_set_is_named_and_replaced():
    """Greek letters and arrows are LaTeX; a sign with no form here (ℵ, «) becomes ``?`` with a warning naming
    it, so the file still compiles."""
    assert escape_latex("α-β → Ω Α") == r"$\alpha$-$\beta$ $\rightarrow$ $\Omega$ A"
    with pytest.warns(UserWarning, match=r"'ℵ' \(U\+2135, ALEF SYMBOL\)"):
        assert escape_latex("ℵ0") == "?0"
    with pytest.warns(UserWarning, match="U\\+00AB"):
        assert escape_latex("«x") == "?x"
    with pytest.warns(UserWarning) as caught:
        assert escape_latex("ℵ to ℵ «") == "? to ? ?"
    assert len(caught) == 1 and "'ℵ' (U+2135, ALEF SYMBOL), '«' (U+00AB" in str(caught[0].message)
    assert "in 'ℵ to ℵ «'" in str(caught[0].message) and caught[0].filename == __file__  # names the caller's text


def nasty_table() -> Table:
    cols = (Column("label", f"Model {NASTY}", align="l"), Column("x", "Top1 (%)", group="Something_V1 & co"))
    rows = (
        TableRow("r", (Cell(NASTY, bold=True, mark="a"), Cell("-0.5 [-1.0, +0.1]", mark="*"))),
        TableRow("s", (Cell("[CLS] token"), Cell("[+0.1, +0.2]"))),  # after \\, a [ opens no optional argument
    )
    prov = Provenance("s", "h", (), ("c\nnewline",), (), (), (("r", ("id",)),), "today")
    return Table("nasty_1", f"Table 1: {NASTY}", NASTY, cols, rows, (Note("a", NASTY), Note("", NASTY)), prov)


def test_provenance_is_comment_lines_only():
    tex = render_latex(nasty_table())
    head = tex.split(r"\begin{table}")[0]
    assert all(line.startswith("%") for line in head.splitlines())
    assert r"\caption{" + escape_latex(NASTY) in tex  # "Table 1:" is left to LaTeX's own numbering


@needs_pdflatex
def test_table_with_every_special_character_compiles(tmp_path):
    path = tmp_path / "nasty.tex"
    path.write_text(latex_document(render_latex(nasty_table())), encoding="utf-8")
    compile_tex(path)


@needs_pdflatex
def test_every_generated_tex_compiles(fixture_report, tmp_path):
    report, out = fixture_report
    generated = sorted(out.glob("*.tex"))
    assert {p.name for p in generated} == {"fixture_blocks.tex", "fixture_blocks_standalone.tex"}
    for path in generated:
        text = path.read_text(encoding="utf-8")
        target = tmp_path / path.name
        # A fragment (to \input in a paper) is compiled inside the minimal document; a document as it is.
        target.write_text(text if r"\documentclass" in text else latex_document(text), encoding="utf-8")
        compile_tex(target)


@needs_pdflatex
def test_golden_tex_compiles(tmp_path):
    for path in sorted(GOLDEN_DIR.glob("*.tex")):
        target = tmp_path / path.name
        target.write_text(latex_document(path.read_text(encoding="utf-8")), encoding="utf-8")
        compile_tex(target)
