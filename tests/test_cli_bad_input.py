"""The command line under bad options in bulk (hypothesis): each case ends in exit 2 with one line on stderr naming
the option, or gets past validation to its work; never a traceback, never a file written before the work.

`oos` has its own tests below, one per kind of bad option, each asserting the exact problem named."""

from __future__ import annotations

import contextlib
import datetime
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from marketsim_opt import cli, oos, workloads
from marketsim_opt.cli import main
from marketsim_opt.data import load_ohlc_csv
from marketsim_opt.optimizers.api import MAX_BUDGET, MAX_SEED, check_method
from marketsim_opt.reports import memory, profiling, report, targets


class _Reached(BaseException):
    """The command got past validation and started its work (a BaseException: main() must not catch it)."""


BUDGETS = ["0", "-1", "4", "default", "abc", "", "1e3", "4.5", "nan", " 4", "99999999999999999999999"]
METHODS = ["direct", "exact", "grid", "nope", "", "DIRECT", "nevergrad:", "nevergrad:Nope", "optuna:X", "grid:2"]
#: Paths in the sandbox: a missing file, a binary file, an empty folder, someone's folder, a new name (and a tiny
#: valid CSV, tried by oos only).
_PLACES = {
    "<missing>": "missing/x.csv",
    "<file>": "file.csv",
    "<folder>": "folder",
    "<foreign>": "foreign",
    "<new>": "new",
    "<bars>": "bars.csv",
}
PATHS = [p for p in _PLACES if p != "<bars>"] + ["", ".", ".."]
DEVICES = ["cpu", "cuda", "cuda:0", "nope", "", "meta", "cpu:0", "mps", "cuda:-1", "CPU"]

_value = {
    "--method": st.sampled_from(METHODS) | st.text(max_size=6),
    "--methods": st.lists(st.sampled_from(METHODS), min_size=1, max_size=3).map(",".join),
    "--budget": st.sampled_from(BUDGETS) | st.integers(-3, 6).map(str),
    "--budgets": st.lists(st.sampled_from(BUDGETS), min_size=1, max_size=3).map(",".join),
    "--backtest-budgets": st.lists(st.sampled_from(BUDGETS), min_size=1, max_size=3).map(",".join),
    "--workload": st.sampled_from(["profile", "backtest", "x", ""]),
    "--csv": st.sampled_from(PATHS),
    "--device": st.sampled_from(DEVICES),
    "--seed": st.sampled_from(["0", "-1", "x", "1.5", "", "2**40"]),
    "--out": st.sampled_from(PATHS),
    "--csv-out": st.sampled_from(PATHS),
    "--repeats": st.sampled_from(["0", "-1", "x", "1", ""]),
    "--sims": st.sampled_from(["0", "-1", "x", "1.5", "", "2", "393", "10**3"]) | st.integers(-2, 400).map(str),
    "--oos-sims": st.sampled_from(["0", "-1", "x", "1.5", "", "2", "393"]) | st.integers(-2, 400).map(str),
    "--oos-budgets": st.lists(st.sampled_from(BUDGETS), min_size=1, max_size=3).map(",".join),
}
#: Values only one command tries (oos: its tiny valid CSV beside the other paths).
_value_of = {"oos": {"--csv": st.sampled_from([*PATHS, "<bars>"])}}
_flags = ["--crypto", "--backtest", "--large", "--force", "--no-progress"]
#: The options tried on each command: its own and a few that do not belong to it.
_tried = {
    "run": ["--method", "--budget", "--workload", "--csv", "--device", "--seed", "--crypto", "--out", "--force"],
    "compare": ["--methods", "--budgets", "--csv", "--device", "--crypto", "--backtest", "--out", "--csv-out"],
    "profile": ["--method", "--budget", "--workload", "--csv", "--device", "--crypto", "--out", "--force"],
    "memory": ["--method", "--budget", "--workload", "--csv", "--crypto", "--out", "--seed", "--methods"],
    "report": [
        "--methods",
        "--budgets",
        "--backtest-budgets",
        "--oos-budgets",
        "--oos-sims",
        "--csv",
        "--crypto",
        "--device",
        "--out",
        "--method",
    ],
    "targets": ["--repeats", "--large", "--out", "--force", "--csv", "--budget"],
    "oos": ["--sims", "--methods", "--budgets", "--csv", "--crypto", "--out", "--seed", "--force", "--budget"],
}
#: What a message about each option may be named by.
_names = {
    "--method": ["method"],
    "--methods": ["method"],
    "--budget": ["budget"],
    "--budgets": ["budget"],
    "--backtest-budgets": ["budget"],
    "--workload": ["--workload"],
    "--csv": ["--csv", "csv", "CSV"],
    "--device": ["device"],
    "--seed": ["--seed", "seed"],
    "--out": ["--out"],
    "--csv-out": ["--csv-out"],
    "--repeats": ["repeats"],
    "--sims": ["--sims"],
    "--oos-sims": ["--oos-sims"],
    "--oos-budgets": ["budget"],
}


#: Bars of the tiny CSV: `oos` allows `TINY_BARS - 8` simulations on it (6 fitted days, a test day, a first close),
#: so its default (70) passes.
TINY_BARS = 80


def tiny_csv(path: Path, n_bars: int = TINY_BARS) -> Path:
    """A valid daily OHLC CSV of `n_bars` bars, a day apart from 2024-01-01, deterministic."""
    lines = ["date,open,high,low,close"]
    close = 100.0
    for i in range(n_bars):
        move = 0.01 * ((i * 7) % 5 - 2)  # -2 % .. +2 %
        new = close * (1 + move)
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
        lines.append(f"{day},{close:.4f},{max(close, new) * 1.01:.4f},{min(close, new) * 0.99:.4f},{new:.4f}")
        close = new
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working folder with a file, an empty folder, someone's folder and a tiny CSV; every command's work stubbed."""
    (tmp_path / "file.csv").write_bytes(b"\xff\xfe\x00binary\x00")
    tiny_csv(tmp_path / "bars.csv")
    (tmp_path / "folder").mkdir()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("keep")
    monkeypatch.chdir(tmp_path)

    def reached(*args, **kwargs):
        raise _Reached

    for owner, name in (
        (workloads, "run"),
        (cli, "run_trials"),
        (profiling, "profile_workload"),
        (memory, "memory_workload"),
        (report, "write_report"),
        (targets, "measure_targets"),
        (oos, "walk_forward"),
    ):
        monkeypatch.setattr(owner, name, reached)
    return tmp_path


def _argv(draw, command: str) -> tuple[list[str], list[tuple[str, str | None]]]:
    chosen = draw(st.lists(st.sampled_from(_tried[command]), unique=True, max_size=4))
    pairs = []
    for option in chosen:
        if option in _flags:
            pairs.append((option, None))
        else:
            template = draw(_value_of.get(command, {}).get(option, _value[option]))
            pairs.append((option, template))
    argv = [command]
    for option, value in pairs:
        argv += [option] if value is None else [f"{option}={_PLACES.get(value, value)}"]
    return argv, pairs


@pytest.mark.parametrize("command", list(_tried))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_options_end_in_one_clear_line(command, data, sandbox):
    argv, pairs = _argv(data.draw, command)
    before = sorted(p.name for p in sandbox.rglob("*"))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, "--no-progress"])
    except _Reached:
        code = None  # valid options: the work started (stubbed)
    assert sorted(p.name for p in sandbox.rglob("*")) == before, "something was written before the work"
    if code is None:
        return
    text = err.getvalue()
    assert code == 2, (argv, text)
    assert "Traceback" not in text and out.getvalue() == "", (argv, text)
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith(("marketsim-opt ", "marketsim-opt:")), (argv, text)
    names = [n for option, _ in pairs for n in _names.get(option, [option])]
    names += [_PLACES.get(value, value) for _, value in pairs if value]
    assert any(n in lines[0] for n in names) or "unrecognized arguments" in lines[0], (argv, lines[0])


# --- oos, one kind of bad option at a time ------------------------------------------------------------------------

#: A run the checks let through: the tiny CSV, two simulations, zero offsets (cheap if it ever ran).
OOS_OK = ["--csv=bars.csv", "--sims=2", "--methods=zero"]
_FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its bytes (None for folders)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def _oos(*args: str) -> tuple[int | None, str, str]:
    """`main(["oos", *args, "--no-progress"])`: (exit code or None when the work was reached, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["oos", *args, "--no-progress"])
    except _Reached:
        code = None
    return code, out.getvalue(), err.getvalue()


def refused(root: Path, *args: str, naming: tuple[str, ...]) -> str:
    """Run `oos *args` in `root`; assert one clear line naming every text of `naming`, and nothing written."""
    before = _snapshot(root)
    code, out, err = _oos(*args)
    assert code is not None, f"oos {args}: the checks let it through to the work"
    assert _snapshot(root) == before, f"oos {args}: something was written, replaced or deleted"
    assert code == 2 and out == "", (args, code, out, err)
    assert "Traceback" not in err and err.count("\n") == 1, (args, err)
    assert err.startswith("marketsim-opt oos: bad input: "), (args, err)
    for text in naming:
        assert text in err, (args, text, err)
    return err


def test_oos_control_reaches_the_work(sandbox):
    """The valid base the tests below spoil one option of: it gets past the checks (the work is stubbed)."""
    before = _snapshot(sandbox)
    assert _oos(*OOS_OK, "--out=new")[0] is None
    assert _snapshot(sandbox) == before


def _not_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


@_FEW
@given(sims=st.sampled_from(["x", "1.5", "", "1e3", "2**3", "0x10", "nan", "4 sims"]) | st.text(max_size=5))
def test_oos_non_integer_sims(sandbox, sims):
    assume(_not_int(sims))
    refused(sandbox, *OOS_OK, f"--sims={sims}", naming=("argument --sims", "invalid int value"))


@_FEW
@given(sims=st.integers(max_value=0))
def test_oos_non_positive_sims(sandbox, sims):
    refused(sandbox, *OOS_OK, f"--sims={sims}", naming=(f"--sims: must be a positive integer, got {sims}",))


@_FEW
@given(csv=st.booleans(), data=st.data())
def test_oos_too_many_sims_names_the_maximum(sandbox, csv, data):
    bars = load_ohlc_csv(sandbox / "bars.csv") if csv else oos.bundled_series()
    most = oos.max_sims(bars)
    sims = data.draw(st.integers(most + 1, 10**30))
    where = ["--csv=bars.csv"] if csv else []
    refused(
        sandbox,
        *where,
        "--methods=zero",
        f"--sims={sims}",
        naming=(f"--sims: {sims} simulations asked", f"{len(bars)} bars allow at most {most}"),
    )


def _unknown(name: str) -> bool:
    try:
        check_method(name)
    except ValueError:
        return True
    return False


_BAD_METHOD = st.sampled_from(
    ["nope", "ZERO", "zero:x", "nevergrad:Nope", "optuna:X", "grid:2", "exact:corner", "robust:", "direct@100"]
) | st.text(alphabet="abcdefgxyz:_-@.", min_size=1, max_size=8).filter(lambda m: m.strip(" ,") == m and _unknown(m))


@_FEW
@given(bad=_BAD_METHOD, good=st.lists(st.sampled_from(["zero", "exact", "direct"]), max_size=2), at=st.integers(0, 2))
def test_oos_unknown_or_malformed_methods(sandbox, bad, good, at):
    methods = [*good[:at], bad, *good[at:]]
    err = refused(sandbox, "--csv=bars.csv", "--sims=2", f"--methods={','.join(methods)}", naming=("method: ",))
    assert repr(bad) in err or repr(bad.split(":", 1)[1]) in err, err  # names the bad entry (or its optimizer)


@pytest.mark.parametrize("methods", ["", ",", " , "])
def test_oos_empty_methods_are_refused(sandbox, methods):
    refused(sandbox, "--csv=bars.csv", "--sims=2", f"--methods={methods}", naming=("--methods",))


_BAD_BUDGET = (
    st.sampled_from(["abc", "", "1e3", "4.5", "nan", "0x10", "default2"]).map(lambda b: (b, f"got {b!r}"))
    | st.integers(max_value=0).map(lambda b: (str(b), f"must be a positive integer, got {b}"))
    | st.integers(MAX_BUDGET + 1, 10**30).map(lambda b: (str(b), f"{b} exceeds the limit of {MAX_BUDGET}"))
)


@_FEW
@given(bad=_BAD_BUDGET, good=st.lists(st.sampled_from(["100", "default", "7"]), max_size=2), zero_only=st.booleans())
def test_oos_bad_budgets(sandbox, bad, good, zero_only):
    """Every budget is checked, even when only budgetless methods run."""
    text, problem = bad
    methods = "--methods=zero" if zero_only else "--methods=zero,grid"
    budgets = ",".join([*good, text])
    refused(sandbox, "--csv=bars.csv", "--sims=2", methods, f"--budgets={budgets}", naming=("budget: ", problem))


def test_oos_crypto_without_csv(sandbox):
    refused(sandbox, "--crypto", "--sims=2", "--methods=zero", naming=("--crypto applies to --csv FILE",))


@pytest.mark.parametrize("path", ["missing.csv", "nowhere/bars.csv"])
def test_oos_missing_csv(sandbox, path):
    refused(sandbox, f"--csv={path}", "--sims=2", "--methods=zero", naming=(f"{path}: cannot read the file",))


def _spoil(lines: list[str], at: int, how: str) -> str:
    """Line `at` (1-based, a data row) of the tiny CSV spoiled `how`; the problem each way is reported as."""
    cells = lines[at - 1].split(",")
    if how == "fields":
        cells.append("9")
    elif how == "price":
        cells[4] = "abc"
    elif how == "date":
        cells[0] = "2024-13-45"
    elif how == "high below low":
        cells[2], cells[3] = cells[3], cells[2]
    elif how == "negative":
        cells[4] = "-1"
    elif how == "duplicate":
        cells[0] = lines[at - 2].split(",")[0]
    lines[at - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


@_FEW
@given(at=st.integers(3, TINY_BARS + 1), how=st.sampled_from(["fields", "price", "date", "high below low", "negative"]))
def test_oos_malformed_csv_names_file_and_line(sandbox, at, how):
    lines = (sandbox / "bars.csv").read_text().splitlines()
    (sandbox / "bad.csv").write_text(_spoil(lines, at, how))
    refused(sandbox, "--csv=bad.csv", "--sims=2", "--methods=zero", naming=(f"bad.csv: line {at}",))


def test_oos_csv_duplicate_date_names_both_lines(sandbox):
    lines = (sandbox / "bars.csv").read_text().splitlines()
    (sandbox / "bad.csv").write_text(_spoil(lines, 6, "duplicate"))
    refused(sandbox, "--csv=bad.csv", "--sims=2", "--methods=zero", naming=("bad.csv: line 6", "line 5"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file, no header row"),
        (b"\n", "no 'date' or 'timestamp' column"),
        (b"date,open,high,low,close\n", "no data rows"),
        (b"\xff\xfe\x00", ""),
    ],
)
def test_oos_csv_without_bars(sandbox, content, problem):
    (sandbox / "bad.csv").write_bytes(content)
    refused(sandbox, "--csv=bad.csv", "--sims=2", "--methods=zero", naming=("bad.csv: ", problem))


def _earlier_report(root: Path) -> Path:
    """A folder marked as `marketsim-opt report`'s output (another command's)."""
    from marketsim_opt.files import atomic_dir

    with atomic_dir(root / "report", command="report") as tmp:
        (tmp / "index.html").write_text("<p>report</p>")
    return root / "report"


@_FEW
@given(place=st.sampled_from(["foreign", "report", "file.csv", "bars.csv", ".", ".."]))
def test_oos_out_not_an_earlier_oos_output(sandbox, place):
    """Refused without --force, whatever is there kept (the snapshot covers every byte)."""
    if place == "report" and not (sandbox / "report").exists():
        _earlier_report(sandbox)
    why = {
        "foreign": "not an output of `marketsim-opt oos`",
        "report": "is the output of `marketsim-opt report`",
        "file.csv": "is a file",
        "bars.csv": "is a file",
        ".": "the current folder or one above it",
        "..": "the current folder or one above it",
    }[place]
    refused(sandbox, *OOS_OK, f"--out={place}", naming=(f"--out {place!r}", why))
    assert (sandbox / "foreign" / "keep.txt").read_text() == "keep"


def test_oos_out_inside_a_file(sandbox):
    refused(sandbox, *OOS_OK, "--out=bars.csv/oos", naming=("--out 'bars.csv/oos'", "is a file, not a folder"))


@_FEW
@given(seed=st.integers(max_value=-1) | st.integers(MAX_SEED + 1, 10**30))
def test_oos_seed_out_of_range(sandbox, seed):
    refused(
        sandbox, *OOS_OK, f"--seed={seed}", naming=(f"seed: expected an integer in [0, {MAX_SEED}], got int {seed}",)
    )


@pytest.mark.parametrize("seed", ["x", "1.5", "", "2**40"])
def test_oos_non_integer_seed(sandbox, seed):
    refused(sandbox, *OOS_OK, f"--seed={seed}", naming=("argument --seed", "invalid int value"))


def test_oos_bad_device_is_one_line(sandbox, monkeypatch):
    """Nothing stubbed: whichever step checks the device, its error is the only line on stderr."""
    monkeypatch.undo()
    monkeypatch.chdir(sandbox)
    refused(sandbox, *OOS_OK, "--out=new", "--device=nope", naming=("device: 'nope' is not a torch device",))
