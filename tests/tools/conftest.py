"""Fixtures of the site tests (tools/site.py): a published site, a local server for it, Debian's chromium.

`--site-dir DIR` points the browser check (test_site_browser.py) at a published site; without it, `site_dir`
publishes a throwaway asv project (a git repo with two benchmarks and three commits) with small sample reports.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--site-dir", default=None, help="published site for test_site_browser.py (default: a sample)")


def load_site():
    """tools/site.py (tools/ is not a package), under a name that does not shadow the stdlib `site`."""
    if "tools_site" not in sys.modules:
        spec = importlib.util.spec_from_file_location("tools_site", REPO_ROOT / "tools" / "site.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["tools_site"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (an ephemeral port) in a thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory))
    )
    server.daemon_threads = True
    server.handle_error = lambda *_: None  # the browser drops connections when a page closes
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def serve_dir():
    """`serve`, for tests that serve a folder of their own."""
    return serve


def _harness_missing() -> str | None:
    """Why the browser check cannot run here, or None."""
    for module in ("playwright", "pytest_playwright"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the bench extra)"
    return None if shutil.which("chromium") else "no `chromium` on PATH (Debian: apt-get install -y chromium)"


def _could_not_run(config: pytest.Config, reason: str) -> None:
    """In the test suite a skip; on a --site-dir (the site check proper) exit 2, neither a pass nor a failure."""
    if config.getoption("--site-dir", default=None):
        pytest.exit(f"the site check could not run: {reason}", returncode=2)
    pytest.skip(reason)


def pytest_sessionstart(session: pytest.Session) -> None:
    reason = _harness_missing()
    if reason and session.config.getoption("--site-dir", default=None):
        pytest.exit(f"the site check could not run: {reason}", returncode=2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a --site-dir, the check's own tests (on broken copies of the throwaway site) are deselected."""
    if config.getoption("--site-dir", default=None):
        own = [item for item in items if "broken_copy" in getattr(item, "fixturenames", ())]
        config.hook.pytest_deselected(items=own)
        items[:] = [item for item in items if item not in own]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict, pytestconfig: pytest.Config) -> dict:
    """pytest-playwright launches Debian's chromium (no `playwright install`)."""
    reason = _harness_missing()
    if reason:
        _could_not_run(pytestconfig, reason)
    return {**browser_type_launch_args, "executable_path": shutil.which("chromium")}


@pytest.fixture(scope="session")
def browser(launch_browser, pytestconfig: pytest.Config):
    """pytest-playwright's browser; a chromium that will not start is the harness's failure, not the site's."""
    try:
        browser = launch_browser()
    except Exception as exc:  # playwright's Error: no display, sandbox refused, a broken install
        _could_not_run(pytestconfig, f"cannot launch chromium: {str(exc).strip().splitlines()[0]}")
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tools/site/node_modules, installed by `npm ci` from the lockfile (skips without npm)."""
    if shutil.which("npm") is None:
        pytest.skip("no `npm` on PATH (Debian: apt-get install -y npm)")
    return load_site().npm_install()


@pytest.fixture(scope="session")
def sample_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small outputs of `marketsim-opt report`, `profile` and `memory`, as `nox -s publish` gathers them."""
    for module in ("matplotlib", "memray", "tuna"):
        pytest.importorskip(module, reason=f"the reports need {module} (the report extra)")
    from marketsim_opt import workloads
    from marketsim_opt.reports.memory import memory_workload
    from marketsim_opt.reports.profiling import profile_workload
    from marketsim_opt.reports.report import write_report

    root = tmp_path_factory.mktemp("reports")
    write_report(
        root / "report",
        budgets=(25,),
        backtest_budgets=(25,),
        methods=("grid", "exact"),
        oos_sims=12,
        oos_budgets=(25,),
        scaling_sizes=(6, 200),
        progress=False,
    )
    profile_workload(workloads.profile(), root / "profile-profile-direct", method="direct", budget=50)
    memory_workload(workloads.profile(), root / "memory-profile-grid", method="grid", budget=500)
    return root


BENCH_CODE = '''"""Tiny benchmarks for the site test."""

VALUE = {value}


def time_sum():
    sum(range(100))


def track_value():
    return VALUE
'''

ASV_CONF = {
    "version": 1,
    "project": "site-test",
    "project_url": "https://example.invalid/site-test",
    "repo": ".",
    "branches": ["main"],
    "environment_type": "existing",
    "benchmark_dir": "benchmarks",
    "results_dir": "results",
    "html_dir": "html",
    "env_dir": "env",
}


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def published_site(tmp_path_factory: pytest.TempPathFactory, node_modules: Path, sample_reports: Path) -> Path:
    """A throwaway asv project with results for 3 commits, published by tools/site.py with the sample reports."""
    pytest.importorskip("asv", reason="asv is not installed (the bench extra)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    project = tmp_path_factory.mktemp("asv-project")
    (project / "home").mkdir()
    env = {**os.environ, "HOME": str(project / "home")}  # asv writes ~/.asv-machine.json
    env.update({f"GIT_{who}_{what}": "t" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")})
    (project / "asv.conf.json").write_text(json.dumps(ASV_CONF), encoding="utf-8")
    (project / ".gitignore").write_text("home/\nresults/\nhtml/\nenv/\n", encoding="utf-8")
    (project / "benchmarks").mkdir()
    (project / "benchmarks" / "__init__.py").write_text("", encoding="utf-8")
    _run(["git", "init", "-q", "-b", "main"], project, env)
    shas = []
    for value in (3, 5, 4):
        (project / "benchmarks" / "bench.py").write_text(BENCH_CODE.format(value=value), encoding="utf-8")
        _run(["git", "add", "-A"], project, env)
        _run(["git", "commit", "-q", "-m", f"value {value}"], project, env)
        shas.append(_run(["git", "rev-parse", "HEAD"], project, env).strip())
    asv = [sys.executable, "-m", "asv"]
    machine_file = project / "home" / ".asv-machine.json"  # cpu, arch, os, num_cpu, ram: the machine selector's
    _run(
        [sys.executable, str(REPO_ROOT / "tools" / "asv_machine.py"), "ci-test", "--path", str(machine_file)],
        project,
        env,
    )
    for sha in shas:
        _run(["git", "checkout", "-q", sha], project, env)
        _run([*asv, "run", "--python=same", "--set-commit-hash", sha, "--quick", "--machine", "ci-test"], project, env)
    _run(["git", "checkout", "-q", "main"], project, env)
    with contextlib.chdir(project):
        html = load_site().publish(Path("asv.conf.json"), reports_dir=sample_reports)
    return (project / html).resolve()


@pytest.fixture(scope="session")
def site_dir(request: pytest.FixtureRequest) -> Path:
    """The site under check: `--site-dir`, or the throwaway published one."""
    option = request.config.getoption("--site-dir", default=None)
    if option is None:
        return request.getfixturevalue("published_site")
    path = Path(option).resolve()
    if not (path / "index.json").is_file():
        pytest.fail(f"--site-dir {option}: no index.json there (run `python tools/site.py publish` first)")
    return path


@pytest.fixture(scope="session")
def site_url(site_dir: Path) -> Iterator[str]:
    """The site under check, served on 127.0.0.1."""
    with serve(site_dir) as base:
        yield base
