"""tables.py: the markdown tables the commands write."""

from __future__ import annotations

from marketsim_opt.tables import is_header_row, markdown_table

COLUMNS = (("name", "left"), ("value bp", "right"))


def test_cells_are_written_as_given_and_aligned_per_column():
    text = markdown_table([["a", "+1.50"], ["longer", "0"]], COLUMNS)
    lines = text.splitlines()
    assert not text.endswith("\n")
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["name", "value bp"]
    assert lines[1].replace("-", "") == "|:|:|"  # left, then right-aligned
    assert lines[1].split("|")[1].startswith(":") and lines[1].split("|")[2].endswith(":")
    assert "+1.50" in lines[2] and lines[2].rstrip("| ").endswith("+1.50")  # not re-formatted as 1.5
    assert len({len(line) for line in lines}) == 1  # padded to one width


def test_header_row_is_recognised_whatever_its_padding():
    head = markdown_table([["a very long cell", "1"]], COLUMNS).splitlines()[0]
    assert is_header_row(head, COLUMNS)
    assert is_header_row("| name | value bp |", COLUMNS)
    assert not is_header_row("| name | value |", COLUMNS)
    assert not is_header_row("| value bp | name |", COLUMNS)
    assert not is_header_row("# notes", COLUMNS)
