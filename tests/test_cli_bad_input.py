"""The command line under bad options in bulk (hypothesis): each case ends in exit 2 with one line on stderr naming
the option, or gets past validation to its work; never a traceback, never a file written before the work."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketsim_opt import cli, workloads
from marketsim_opt.cli import main
from marketsim_opt.reports import memory, profiling, report, targets


class _Reached(BaseException):
    """The command got past validation and started its work (a BaseException: main() must not catch it)."""


BUDGETS = ["0", "-1", "4", "default", "abc", "", "1e3", "4.5", "nan", " 4", "99999999999999999999999"]
METHODS = ["direct", "exact", "grid", "nope", "", "DIRECT", "nevergrad:", "nevergrad:Nope", "optuna:X", "grid:2"]
#: Paths in the sandbox: a missing file, a binary file, an empty folder, someone's folder, a new name.
_PLACES = {
    "<missing>": "missing/x.csv",
    "<file>": "file.csv",
    "<folder>": "folder",
    "<foreign>": "foreign",
    "<new>": "new",
}
PATHS = [*_PLACES, "", ".", ".."]
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
}
_flags = ["--crypto", "--backtest", "--large", "--force", "--no-progress"]
#: The options tried on each command: its own and a few that do not belong to it.
_tried = {
    "run": ["--method", "--budget", "--workload", "--csv", "--device", "--seed", "--crypto", "--out", "--force"],
    "compare": ["--methods", "--budgets", "--csv", "--device", "--crypto", "--backtest", "--out", "--csv-out"],
    "profile": ["--method", "--budget", "--workload", "--csv", "--device", "--crypto", "--out", "--force"],
    "memory": ["--method", "--budget", "--workload", "--csv", "--crypto", "--out", "--seed", "--methods"],
    "report": ["--methods", "--budgets", "--backtest-budgets", "--csv", "--crypto", "--device", "--out", "--method"],
    "targets": ["--repeats", "--large", "--out", "--force", "--csv", "--budget"],
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
}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working folder with a file, an empty folder and someone's folder in it; every command's work stubbed."""
    (tmp_path / "file.csv").write_bytes(b"\xff\xfe\x00binary\x00")
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
            template = draw(_value[option])
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
