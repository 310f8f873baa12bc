"""Local sessions.  `nox -l` lists them; extra arguments after `--` go to the underlying command.

    nox -s tests            the test suite (the README's test command), every extra installed
    nox -s lint             ruff
    nox -s bench            the asv suite once, quickly, in this session's environment (results kept for HEAD)
    nox -s bench-history    asv over a commit range in managed environments (default: the last 5 commits)
    nox -s bench-instructions  the instruction-count tier (callgrind, about a minute) on HEAD, results kept
    nox -s profile          `marketsim-opt profile`: cProfile, icicle view, time shares (reports/profile-...)
    nox -s memory           `marketsim-opt memory`: memray flame graph and peak (reports/memory-...)
    nox -s report           `marketsim-opt report`: regret-vs-time plot, tables, kernel scaling (reports/report)
    nox -s publish          the three above, then the asv site with them and its assets vendored, checked in
                            Chromium; `-- serve` to browse
    nox -s gate -- A B      the regression gate (tools/gate.py): exit 0 ok, 1 regressed, 2 undecided
    nox -s gate-tests       the gate's planted-regression tests, timing plants included
    nox -s compare          `marketsim-opt compare`
    nox -s references       regenerate the suite's frozen references with the exact solver (`-- --check` compares)

Every install goes through constraints.txt (asv's managed environments through PIP_CONSTRAINT), so torch
stays the pinned CPU wheel, and environments are reused between runs.  Results are recorded under one fixed asv
machine name (ASV_MACHINE, default `cpu-2core`), not the hostname, which changes
from session to session on these machines.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ("-c", "constraints.txt")
#: asv's managed environments install the matrix (asv.conf.json) with pip, which reads PIP_CONSTRAINT: the same
#: pins without naming versions in the matrix, whose entries are part of the environment names in results/.
ASV_PIP_ENV = {"PIP_CONSTRAINT": os.path.abspath("constraints.txt")}
MACHINE = os.environ.get("ASV_MACHINE", "cpu-2core")


def register_machine(session: nox.Session) -> None:
    """Write this machine, hardware included, into asv's machine file under the fixed name (`tools/asv_machine.py`:
    `asv machine` itself drops the values it detects, and its default name is the hostname)."""
    session.run("python", "tools/asv_machine.py", MACHINE, silent=True)


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def asv_run_here(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """`asv run` in this session's environment, results recorded for HEAD under the fixed machine name."""
    session.run(
        "asv",
        "run",
        "--python=same",
        "--set-commit-hash",
        head_commit(),
        "--machine",
        MACHINE,
        "--show-stderr",
        *args,
        env=env,
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (the README's test command) with every extra installed, so no test skips for a missing one;
    extra arguments go to pytest."""
    session.install(*CONSTRAINTS, "-e", ".[test,bench]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """`asv run --python=same --quick` in this environment, results recorded for HEAD; args go to asv run.

    Run it before and after a change, then `asv compare BEFORE AFTER --machine cpu-2core`
    (or `nox -s gate`).  Uncommitted changes are recorded under HEAD's hash.
    """
    session.install(*CONSTRAINTS, "-e", ".[bench]")
    register_machine(session)
    session.run("asv", "check", "--python=same", silent=True)  # every benchmark's definition imports and is valid
    asv_run_here(session, *(session.posargs or ["--quick"]))


@nox.session(name="bench-history")
def bench_history(session: nox.Session) -> None:
    """asv over a commit range (default `HEAD~5..HEAD`) in managed virtualenvs; args replace the range."""
    session.install(*CONSTRAINTS, "asv==0.6.6", "virtualenv")
    register_machine(session)
    args = session.posargs or ["HEAD~5..HEAD"]
    session.run(
        "asv", "run", "--machine", MACHINE, "--skip-existing-successful", "--show-stderr", *args, env=ASV_PIP_ENV
    )


@nox.session(name="bench-instructions")
def bench_instructions(session: nox.Session) -> None:
    """The instruction-count tier (benchmarks/instructions.py) on HEAD in this environment; args go to asv run.

    One valgrind run measures the four paths (about a minute); results are recorded for HEAD under the fixed
    machine name.  Over older commits: `MARKETSIM_BENCH_INSTRUCTIONS=1 nox -s bench-history -- RANGE -b
    instructions`.
    """
    if shutil.which("valgrind") is None:
        session.error("instruction counts need valgrind (Debian: apt-get install valgrind)")
    session.install(*CONSTRAINTS, "-e", ".[bench]")
    register_machine(session)
    asv_run_here(session, "--bench", r"^instructions\.", *session.posargs, env={"MARKETSIM_BENCH_INSTRUCTIONS": "1"})


@nox.session
def profile(session: nox.Session) -> None:
    """`marketsim-opt profile`; args go to it (default: the profile workload with DIRECT)."""
    session.install(*CONSTRAINTS, "-e", ".[report]")
    session.run("marketsim-opt", "profile", *session.posargs)


@nox.session
def memory(session: nox.Session) -> None:
    """`marketsim-opt memory`; args go to it (default: the profile workload with DIRECT)."""
    session.install(*CONSTRAINTS, "-e", ".[report]")
    session.run("marketsim-opt", "memory", *session.posargs)


@nox.session
def report(session: nox.Session) -> None:
    """`marketsim-opt report`; args go to it (about 4 minutes here with the defaults)."""
    session.install(*CONSTRAINTS, "-e", ".[report]")
    session.run("marketsim-opt", "report", *session.posargs)


#: What `nox -s publish` puts on the site's reports page: (command, workload, method, budget).
SITE_VIEWS = (("profile", "profile", "direct"), ("memory", "profile", "direct"), ("profile", "backtest", "exact"))


#: The site check: pytest-playwright tests, in Debian's chromium (tests/tools/conftest.py).
SITE_CHECK = "tests/tools/test_site_browser.py"


@nox.session
def publish(session: nox.Session) -> None:
    """Write the reports, render the site with them (assets vendored from npm), check it in headless Chromium.

    `-- serve` serves it after; `-- no-report` reuses reports/report instead of running the report again.
    """
    session.install(*CONSTRAINTS, "-e", ".[bench,test]")
    for command, workload, method in SITE_VIEWS:
        out = f"reports/{command}-{workload}-{method}"
        session.run("marketsim-opt", command, "--workload", workload, "--method", method, "--out", out)
    if "no-report" not in session.posargs or not os.path.isdir("reports/report"):
        session.run("marketsim-opt", "report", "--out", "reports/report")
    session.run("python", "tools/site.py", "publish", "--reports", "reports")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", SITE_CHECK, "--site-dir", "html")
    if "serve" in session.posargs:
        session.run("python", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "html", "8080")


@nox.session
def gate(session: nox.Session) -> None:
    """The regression gate: `nox -s gate -- BASE HEAD [--timings]` (exit 0 / 1 regressed / 2 undecided)."""
    session.install(*CONSTRAINTS, "asv==0.6.6", "virtualenv")
    if len(session.posargs) < 2:
        session.error("usage: nox -s gate -- BASE HEAD [--timings] [--json FILE]")
    session.run("python", "tools/gate.py", *session.posargs)  # it passes constraints.txt to asv itself


@nox.session(name="gate-tests")
def gate_tests(session: nox.Session) -> None:
    """The gate's planted-regression tests, timing plants included (slow: about 20 minutes here)."""
    session.install(*CONSTRAINTS, "-e", ".[test,bench]")
    session.run("python", "-m", "pytest", "tests/tools/test_gate.py", "-m", "timing or not timing", *session.posargs)


@nox.session
def references(session: nox.Session) -> None:
    """The suite's frozen references (benchmarks/ruler/frozen): `-- --check` compares, no argument rewrites them."""
    session.install(*CONSTRAINTS, "-e", ".")
    session.run("python", "tools/freeze_references.py", *session.posargs)


@nox.session
def compare(session: nox.Session) -> None:
    """The method x budget comparison; args go to `marketsim-opt compare`."""
    session.install(*CONSTRAINTS, "-e", ".")
    session.run("marketsim-opt", "compare", *session.posargs)
