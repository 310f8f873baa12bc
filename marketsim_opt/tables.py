"""Markdown tables as the commands write them: pre-formatted cells in tabulate's `pipe` format.

tabulate is imported where a table is written, not with the package: asv's environments install the package
`--no-deps`, and the suite imports modules that write tables.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Column", "markdown_table", "is_header_row"]

#: One column: (header, alignment: "left" or "right").
Column = tuple[str, str]


def markdown_table(rows: Sequence[Sequence[str]], columns: Sequence[Column]) -> str:
    """`rows` of formatted cells under `columns`' headers, aligned as `columns` says, without a final newline
    (cells are written as given: tabulate does not re-format numbers)."""
    from tabulate import tabulate

    headers, align = zip(*columns, strict=True)
    return tabulate(rows, headers, tablefmt="pipe", disable_numparse=True, colalign=align)


def is_header_row(line: str, columns: Sequence[Column]) -> bool:
    """Whether `line` is the header row of a `markdown_table` with `columns`, whatever its column widths: how a
    command recognises a file it wrote before (by its first line)."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")] == [name for name, _ in columns]
