"""Local sessions: `nox -s tests`, `nox -s lint`, `nox -s compare` (later issues add bench, gate, publish, ...).

Every session installs through constraints.txt, so torch stays the pinned CPU wheel.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "virtualenv"

CONSTRAINTS = ("-c", "constraints.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (the README's test command); extra arguments go to pytest."""
    session.install(*CONSTRAINTS, "-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def compare(session: nox.Session) -> None:
    """The method x budget comparison; extra arguments go to `marketsim-opt compare`."""
    session.install(*CONSTRAINTS, "-e", ".")
    session.run("marketsim-opt", "compare", *session.posargs)
