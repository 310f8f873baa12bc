"""Bad input in bulk for the data layer (hypothesis): CSV files for `load_ohlc_csv`, tensors for `Problem`.

Every generated case ends in a `DataError` whose message starts with the file path (and names the line when
the problem is on one line) or names the field, or in bars equal to a reference parse done here with the
`csv` module; never another exception type.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from marketsim_opt.data import OHLC, DataError, Problem, load_ohlc_csv

PRICES = ("open", "high", "low", "close")
HEADER = ["date", *PRICES]
FIELDS = ("close", "high", "low", "high_pred", "low_pred")


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file path, rewritten by each example (function-scoped tmp_path does not mix with @given)."""
    return tmp_path_factory.mktemp("bulk") / "bars.csv"


@st.composite
def bar_rows(draw: st.DrawFn) -> list[list[str]]:
    """Valid daily bars as CSV rows under HEADER, oldest first: `low < open, close < high`, moves within 35%."""
    n = draw(st.integers(2, 8))
    scale = draw(st.sampled_from([1e-4, 1.0, 37.5, 1e5]))
    unit = st.floats(0.0, 1.0)
    prev, rows = scale, []
    for i in range(n):
        move, where, up, down = draw(st.tuples(st.floats(-0.3, 0.3), unit, st.floats(1e-3, 0.2), st.floats(1e-3, 0.2)))
        close = prev * math.exp(move)
        open_ = prev * math.exp(move * where)
        high, low = max(open_, close) * (1 + up), min(open_, close) * (1 - down)
        rows.append([(date(2021, 1, 4) + timedelta(days=i)).isoformat(), *map(repr, (open_, high, low, close))])
        prev = close
    return rows


def to_csv(header: list[str], rows: list[list[str]], newline: str = "\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows([header, *rows])
    return out.getvalue()


def reference_parse(text: str) -> tuple[tuple[str, ...], dict[str, list[float]]]:
    """The bars of a CSV as the loader documents them, read independently with the csv module (no checks)."""
    table = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    columns: dict[str, int] = {}
    for i, name in enumerate(table[0]):
        columns.setdefault(name.strip().lower(), i)
    t = columns["date"] if "date" in columns else columns["timestamp"]

    def when(cell: str) -> datetime:
        try:
            return datetime.fromisoformat(cell.strip())
        except ValueError:
            return datetime.fromtimestamp(float(cell), tz=UTC)

    body = sorted((r for r in table[1:] if any(c.strip() for c in r)), key=lambda r: when(r[t]))
    return tuple(r[t].strip() for r in body), {p: [float(r[columns[p]]) for r in body] for p in PRICES}


def assert_matches_reference(bars: OHLC, text: str) -> None:
    times, values = reference_parse(text)
    assert bars.time == times
    for name in PRICES:
        np.testing.assert_array_equal(getattr(bars, name), values[name], err_msg=name)


def load_outcome(path: Path, data: bytes) -> OHLC | DataError:
    """Write `data` to `path` and load it: the bars, or the DataError (any other exception fails the test)."""
    path.write_bytes(data)
    try:
        return load_ohlc_csv(path)
    except DataError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
        return exc


# --- files that must load --------------------------------------------------------------------------


@given(
    rows=bar_rows(),
    layout=st.permutations(range(5)),
    names=st.lists(st.sampled_from([str.lower, str.upper, str.title, lambda s: f" {s} "]), min_size=5, max_size=5),
    time_name=st.sampled_from(["date", "timestamp"]),
    bom=st.booleans(),
    blanks=st.lists(st.integers(1, 9), max_size=3),
    shuffle=st.randoms(use_true_random=False),
    newline=st.sampled_from(["\n", "\r\n"]),
    extra=st.booleans(),
)
def test_harmless_variations_load_exactly(
    csv_path, rows, layout, names, time_name, bom, blanks, shuffle, newline, extra
):
    """Case, column order, extra columns, BOM, blank lines, row order and line endings change nothing."""
    header = [f(n) for f, n in zip(names, [time_name, *PRICES])]
    header, rows = [header[i] for i in layout], [[r[i] for i in layout] for r in rows]
    if extra:
        header, rows = [*header, "Volume"], [[*r, "1000"] for r in rows]
    shuffle.shuffle(rows)
    lines = to_csv(header, rows, newline).split(newline)
    for at in blanks:
        lines.insert(min(at, len(lines) - 1), ",".join([""] * len(header)) if at % 2 else "")
    text = newline.join(lines)
    outcome = load_outcome(csv_path, (codecs.BOM_UTF8 if bom else b"") + text.encode())
    assert isinstance(outcome, OHLC), outcome
    assert_matches_reference(outcome, text)


# --- files that must not load, at a known line --------------------------------------------------------

BAD_NUMBERS = ["", "abc", "1,5", "nan", "inf", "-inf", "-1", "0", "1e-300", "1e300", "0x10", "1.2.3"]
BAD_TIMES = ["", "02/03/2021", "2021/03/02", "yesterday", "2021-02-30", "nan", "1e300"]


def cell_fault(rows: list[list[str]], r: int, draw: st.DrawFn) -> list[list[str]]:
    col = draw(st.integers(0, 4))
    rows[r][col] = draw(st.sampled_from(BAD_TIMES if col == 0 else BAD_NUMBERS))
    return rows


def duplicate_time(rows: list[list[str]], r: int, draw: st.DrawFn) -> list[list[str]]:
    other = draw(st.integers(0, len(rows) - 1).filter(lambda i: i != r))
    rows[r][0] = rows[other][0]
    return rows


def close_outside(rows: list[list[str]], r: int, draw: st.DrawFn) -> list[list[str]]:
    col, bound, factor = draw(st.sampled_from([(4, 2, 1.01), (4, 3, 0.99), (1, 2, 1.01), (1, 3, 0.99)]))
    rows[r][col] = repr(float(rows[r][bound]) * factor)
    return rows


def swap_high_low(rows: list[list[str]], r: int, draw: st.DrawFn) -> list[list[str]]:
    rows[r][2], rows[r][3] = rows[r][3], rows[r][2]
    return rows


def truncate_row(rows: list[list[str]], r: int, draw: st.DrawFn) -> list[list[str]]:
    rows[r] = rows[r][: draw(st.integers(1, 4))]
    return rows


def extra_cell(rows: list[list[str]], r: int, draw: st.DrawFn) -> list[list[str]]:
    rows[r] = [*rows[r], "7"]
    return rows


FAULTS = [cell_fault, duplicate_time, close_outside, swap_high_low, truncate_row, extra_cell]


@given(rows=bar_rows(), fault=st.sampled_from(FAULTS), data=st.data())
def test_a_bad_row_names_its_line(csv_path, rows, fault, data):
    """A bad cell, a repeated time, open/close outside [low, high], high < low or a wrong field count on one row
    is a DataError naming that row's line (the later one of two rows with the same time)."""
    r = data.draw(st.integers(0, len(rows) - 1))
    if fault is duplicate_time and len(rows) < 2:
        return
    rows = fault([list(row) for row in rows], r, data.draw)
    line = r + 2
    if fault is duplicate_time:
        line = max(r, next(i for i, row in enumerate(rows) if i != r and row[0] == rows[r][0])) + 2
    outcome = load_outcome(csv_path, to_csv(HEADER, rows).encode())
    assert isinstance(outcome, DataError), f"accepted {rows[r]}"
    assert re.match(re.escape(f"{csv_path}: line {line}") + "[ :]", str(outcome)), str(outcome)


@given(rows=bar_rows(), fault=st.sampled_from(["drop", "duplicate", "only_one_forecast", "empty", "header_only"]))
def test_a_bad_header_or_file_names_the_file(csv_path, rows, fault):
    """A missing or duplicated column, a lone forecast column, an empty or header-only file are DataErrors."""
    header = list(HEADER)
    if fault == "drop":
        i = random.Random(len(rows)).randrange(5)
        header, rows = header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows]
    elif fault == "duplicate":
        header, rows = [*header, "HIGH"], [[*r, r[2]] for r in rows]
    elif fault == "only_one_forecast":
        header, rows = [*header, "low_pred"], [[*r, r[3]] for r in rows]
    elif fault == "header_only":
        rows = []
    text = "" if fault == "empty" else to_csv(header, rows)
    assert isinstance(load_outcome(csv_path, text.encode()), DataError)


@given(rows=bar_rows(), encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252"]))
def test_other_encodings_name_the_file(csv_path, rows, encoding):
    """A CSV saved as UTF-16/32 or a legacy 8-bit code page (with a non-ASCII name in it) is a DataError."""
    text = to_csv([*HEADER, "Börse"], [[*r, "X"] for r in rows])
    outcome = load_outcome(csv_path, text.encode(encoding))
    assert isinstance(outcome, DataError)
    assert "not a UTF-8 text CSV" in str(outcome)


# --- anything at all: an error naming the file, or exactly the reference parse ---------------------------


@given(data=st.binary(max_size=300))
def test_random_bytes(csv_path, data):
    """Random bytes: a DataError starting with the path, or (if they happen to be a CSV) the reference bars."""
    outcome = load_outcome(csv_path, data)
    if isinstance(outcome, OHLC):
        assert_matches_reference(outcome, data.decode("utf-8-sig"))


@given(rows=bar_rows(), cut=st.floats(0.0, 1.0))
def test_truncated_file(csv_path, rows, cut):
    """A file cut anywhere (mid-number, mid-row): a DataError naming the file, or the bars the cut text holds."""
    text = to_csv(HEADER, rows)
    text = text[: int(len(text) * cut)]
    outcome = load_outcome(csv_path, text.encode())
    if isinstance(outcome, OHLC):
        assert_matches_reference(outcome, text)


@given(rows=bar_rows(), data=st.data(), cell=st.text(max_size=12))
def test_any_text_in_a_cell(csv_path, rows, data, cell):
    """Any text in any cell (quotes, newlines, NULs, digits): an error naming the file and a line, or exact bars."""
    r, c = data.draw(st.integers(0, len(rows) - 1)), data.draw(st.integers(0, 4))
    rows[r][c] = cell
    text = to_csv(HEADER, rows)
    outcome = load_outcome(csv_path, text.encode())
    if isinstance(outcome, OHLC):
        assert_matches_reference(outcome, text)
    else:
        assert ": line " in str(outcome) or "duplicate" in str(outcome) or "timezone" in str(outcome), str(outcome)


# --- Problem tensors ------------------------------------------------------------------------------------


def good_tensors(shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    close = torch.linspace(-0.02, 0.02, math.prod(shape)).reshape(shape)
    return dict(close=close, high=close + 0.01, low=close - 0.01, high_pred=close + 0.005, low_pred=close - 0.005)


@given(
    shape=st.sampled_from([(5,), (3, 5), (1, 1)]),
    field=st.sampled_from(FIELDS),
    fault=st.sampled_from(["short", "extra_dim", "float64", "int", "nan", "inf", "list", "below_low"]),
    data=st.data(),
)
def test_problem_bad_tensors_name_the_field(shape, field, fault, data):
    """Bad shapes, dtypes, NaN/inf values, non-tensors and high < low are DataErrors naming the field."""
    t = good_tensors(shape)
    index = tuple(data.draw(st.integers(0, n - 1)) for n in shape)
    if fault == "short":
        t[field] = t[field][..., :-1]
    elif fault == "extra_dim":
        t[field] = t[field].unsqueeze(0)
    elif fault == "float64":
        t[field] = t[field].double()
    elif fault == "int":
        t[field] = t[field].to(torch.int64)
    elif fault in ("nan", "inf"):
        t[field][index] = float(fault)
    elif fault == "list":
        t[field] = t[field].tolist()
    else:
        field = "high"
        t["high"][index] = t["low"][index] - 0.001
    with pytest.raises(DataError) as info:
        Problem(**t)
    assert field in str(info.value), str(info.value)
