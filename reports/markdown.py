"""Renders a ``Table`` as GitHub-flavoured Markdown: a caption line, a pipe table, notes, footnotes.

Row marks (a row whose seeds did not all finish) and the provenance are Markdown footnotes
(``[^a]``, ``[^provenance]``); the significance mark ``*`` is printed inline and explained in a note.
"""

from __future__ import annotations

from tabulate import tabulate

from reports.table import Cell, Column, Table

_ALIGN = {"l": "left", "c": "center", "r": "right"}
_ESCAPE = {"\\": "\\\\", "|": "\\|", "*": "\\*", "_": "\\_", "`": "\\`", "~": "\\~", "<": "&lt;", ">": "&gt;"}


def render_markdown(table: Table) -> str:
    """The table as Markdown text (ends with a newline).

    Args:
        table: the table from ``reports.table.build_table``.
    """
    head = f"**{escape_markdown(table.title)}** {escape_markdown(table.caption)}[^provenance]"
    body = tabulate(
        [[_cell(c) for c in row.cells] for row in table.rows],
        headers=[escape_markdown(_title(c, table)) for c in table.columns],
        tablefmt="pipe",
        colalign=[_ALIGN[c.align] for c in table.columns],
        disable_numparse=True,
    )
    parts = [head, "", body, ""]
    for note in (n for n in table.notes if n.mark in ("", "*")):
        prefix = "\\* " if note.mark == "*" else ""
        parts += [prefix + escape_markdown(note.text), ""]
    for note in table.notes:
        if note.mark not in ("", "*"):
            parts.append(f"[^{note.mark}]: {escape_markdown(note.text)}")
    parts.append("[^provenance]: Provenance: " + "; ".join(escape_markdown(x) for x in table.provenance.lines()) + ".")
    return "\n".join(parts) + "\n"


def _title(column: Column, table: Table) -> str:
    """A column's title; where the table has several header groups (a study that compares datasets), prefixed with
    its group, as a pipe table has no row of group headers."""
    groups = {c.group for c in table.columns if c.group}
    return f"{column.group} {column.title}" if len(groups) > 1 and column.group else column.title


def escape_markdown(text: str) -> str:
    """Escapes the characters that Markdown (or a pipe table) would interpret."""
    return "".join(_ESCAPE.get(ch, ch) for ch in text)


def _cell(cell: Cell) -> str:
    text = escape_markdown(cell.text)
    if cell.bold:
        text = f"**{text}**"
    if cell.mark == "*":
        text += "\\*"
    elif cell.mark:
        text += f"[^{cell.mark}]"
    return text
