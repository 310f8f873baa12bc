"""Tests for tools/site.py: vendoring asv's CDN assets from the npm registry, and the headless-browser site check.

The vendoring tests use the real npm tarballs, cached in the repo's `.asv/vendor-cache` (downloaded once per
machine); the failure paths use a corrupted cache or a throwaway local registry and need no network. The end-to-end
tests build a tiny asv project (a git repo with two benchmarks and three commits) in a temporary folder, publish and
vendor it, and open it in Debian's chromium; they skip when asv, git, playwright or `chromium` is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_PY = REPO_ROOT / "tools" / "site.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: a <script src> or <link href> that points off-site
REMOTE_TAG_RE = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:[a-z]+:)?//", re.IGNORECASE)


def _load_site_module():
    """Import tools/site.py (tools/ is not a package) under a name that does not shadow the stdlib `site`."""
    spec = importlib.util.spec_from_file_location("tools_site", SITE_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


site = _load_site_module()

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="no `chromium` on PATH (Debian: apt-get install -y chromium)"
)


def _asv_www() -> Path:
    """asv's www template folder (skips when asv is not installed)."""
    asv = pytest.importorskip("asv", reason="asv is not installed (the bench extra)")
    return Path(asv.__file__).parent / "www"


@pytest.fixture(scope="session")
def vendor_cache() -> Path:
    """The repo's npm tarball cache, filled once per machine with every package."""
    for package in site.PACKAGES.values():
        site.fetch_tarball(package, site.DEFAULT_CACHE_DIR)
    return site.DEFAULT_CACHE_DIR


@pytest.fixture(scope="session")
def report_vendor_cache() -> Path:
    """The npm cache, filled with the packages memray's flame graph page loads."""
    for package in site.REPORT_PACKAGES.values():
        site.fetch_tarball(package, site.DEFAULT_CACHE_DIR)
    return site.DEFAULT_CACHE_DIR


@pytest.fixture(scope="session")
def sample_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small outputs of `marketsim-opt report`, `profile` and `memory`, as `nox -s publish` gathers them."""
    pytest.importorskip("matplotlib", reason="the report needs matplotlib (the report extra)")
    pytest.importorskip("memray", reason="the memory view needs memray (the report extra)")
    pytest.importorskip("tuna", reason="the icicle view needs tuna (the report extra)")
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


@pytest.fixture
def template_site(tmp_path: Path) -> Path:
    """A copy of asv's unpublished www folder (its index.html loads the CDN assets)."""
    return Path(shutil.copytree(_asv_www(), tmp_path / "html"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------------------- rewriting


def test_rewrite_replaces_every_cdn_reference_of_asv_template() -> None:
    """Every CDN <script>/<link> of asv's index.html is mapped, and none is left after rewriting."""
    text = (_asv_www() / "index.html").read_text(encoding="utf-8")
    assert len(REMOTE_TAG_RE.findall(text)) == len(site.ASSETS)
    new, remaining = site.rewrite_html(text)
    assert remaining == []
    assert REMOTE_TAG_RE.findall(new) == []
    for asset in site.ASSETS:
        assert asset.cdn_url not in new
        assert f'"{asset.local_path}"' in new
    assert "integrity=" not in new and "crossorigin=" not in new and "referrerpolicy=" not in new
    assert new.count('onerror="js_load_failure()"') == text.count('onerror="js_load_failure()"')
    assert site.rewrite_html(new) == (new, [])  # idempotent


def test_rewrite_reports_unknown_cdn_reference() -> None:
    """An off-site script the table does not know is reported and left alone."""
    text = '<script src="https://cdn.example.com/new-lib.js" integrity="sha256-x"></script><a href="https://x.org">'
    assert site.rewrite_html(text) == (text, ["https://cdn.example.com/new-lib.js"])


def test_vendor_refuses_unknown_cdn_and_leaves_index_untouched(tmp_path: Path) -> None:
    """Vendoring fails loudly, naming the URL, and writes nothing when an unknown CDN reference remains."""
    index = tmp_path / "index.html"
    original = (
        f'<script src="{site.ASSETS[0].cdn_url}"></script>\n<link rel="stylesheet" href="//cdn.example.com/new.css">\n'
    )
    index.write_text(original, encoding="utf-8")
    with pytest.raises(site.SiteError, match=r"index\.html: //cdn\.example\.com/new\.css"):
        site.vendor_site(tmp_path, tmp_path / "cache")
    assert index.read_text(encoding="utf-8") == original
    assert not (tmp_path / "vendor").exists() and not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------------------------------------- vendoring


def test_vendor_site_makes_asv_template_self_contained(template_site: Path, vendor_cache: Path) -> None:
    """vendor_site extracts every asset, leaves no off-site script/stylesheet, and reruns offline from the cache."""
    error_before = (template_site / "error.html").read_bytes()
    replaced = site.vendor_site(template_site, vendor_cache)
    assert replaced == {"index.html": [a.cdn_url for a in site.ASSETS]}
    index = (template_site / "index.html").read_text(encoding="utf-8")
    assert REMOTE_TAG_RE.findall(index) == []
    for asset in site.ASSETS:
        assert (template_site / asset.local_path).stat().st_size > 1000, asset
    assert (template_site / "vendor/bootstrap/dist/fonts/glyphicons-halflings-regular.woff").is_file()
    assert (template_site / "error.html").read_bytes() == error_before
    assert not list(template_site.glob(".*.tmp"))
    offline = f"http://127.0.0.1:{_free_port()}"  # nothing listens: the rerun must come from the cache alone
    assert site.vendor_site(template_site, vendor_cache, offline) == {}  # and changes nothing
    assert (template_site / "index.html").read_text(encoding="utf-8") == index


def test_corrupted_cached_tarball_fails_integrity_and_keeps_index(
    template_site: Path, vendor_cache: Path, tmp_path: Path
) -> None:
    """A corrupted tarball in the cache fails the sha512 check, names the package, and index.html stays as it was."""
    cache = Path(shutil.copytree(vendor_cache, tmp_path / "cache"))
    tarball = cache / "blueimp-md5-2.19.0.tgz"
    tarball.write_bytes(tarball.read_bytes()[:-10] + b"corrupted!")
    before = (template_site / "index.html").read_bytes()
    with pytest.raises(site.SiteError, match=r"blueimp-md5@2\.19\.0: integrity check failed for https://\S+\.tgz"):
        site.vendor_site(template_site, cache)
    assert (template_site / "index.html").read_bytes() == before


def test_download_failure_names_package_and_url(tmp_path: Path) -> None:
    """An unreachable registry fails with the package and the URL in the message."""
    registry = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(
        site.SiteError, match=rf"jquery@3\.3\.1: download of {re.escape(registry)}/jquery/3\.3\.1 failed"
    ):
        site.fetch_tarball(site.PACKAGES["jquery"], tmp_path / "cache", registry)


def _fake_registry(root: Path, package, integrity: str, tarball: bytes) -> None:
    """Lay out `<root>/<name>/<version>` (metadata) and the tarball as a static registry."""
    (root / package.name / "-").mkdir(parents=True)
    meta = {
        "name": package.name,
        "version": package.version,
        "dist": {"integrity": integrity, "tarball": "TARBALL_URL"},
    }
    (root / package.name / package.version).write_text(json.dumps(meta), encoding="utf-8")
    (root / package.name / "-" / f"{package.name}-{package.version}.tgz").write_bytes(tarball)


def test_downloaded_tarball_with_wrong_hash_is_rejected_and_not_cached(tmp_path: Path) -> None:
    """A registry serving bytes that do not match dist.integrity fails, naming package and URL; nothing is cached."""
    package = site.PACKAGES["blueimp-md5"]
    _fake_registry(tmp_path / "registry", package, package.integrity, b"not the real tarball")
    with site.serve_dir(tmp_path / "registry") as base:
        meta_path = tmp_path / "registry" / package.name / package.version
        url = f"{base}/{package.name}/-/{package.name}-{package.version}.tgz"
        meta_path.write_text(meta_path.read_text().replace("TARBALL_URL", url), encoding="utf-8")
        with pytest.raises(site.SiteError, match=rf"blueimp-md5@2\.19\.0: integrity check failed for {re.escape(url)}"):
            site.fetch_tarball(package, tmp_path / "cache", base)
    assert not (tmp_path / "cache" / f"{package.name}-{package.version}.tgz").exists()


def test_registry_integrity_must_match_pin(tmp_path: Path) -> None:
    """Metadata whose dist.integrity differs from the pinned one is refused before any download."""
    package = site.PACKAGES["jquery"]
    _fake_registry(tmp_path / "registry", package, "sha512-" + "A" * 86 + "==", b"")
    with site.serve_dir(tmp_path / "registry") as base:
        with pytest.raises(site.SiteError, match=r"jquery@3\.3\.1: registry integrity .* differs from the pinned"):
            site.fetch_tarball(package, tmp_path / "cache", base)


def test_publish_without_config_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`publish` with a missing config exits 1 with a one-line error."""
    assert site.main(["publish", "--config", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: asv config") and "\n" not in err


def test_check_without_html_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check` on a folder that is no published site exits 2 (the harness could not run)."""
    assert site.main(["check", "--html-dir", str(tmp_path / "nope"), "--screenshot-dir", str(tmp_path)]) == 2
    assert "could not run" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------- reports


def test_add_reports_vendors_memray_and_links_the_nav(
    template_site: Path, vendor_cache: Path, report_vendor_cache: Path, sample_reports: Path
) -> None:
    """The reports land in reports/, memray's page loads only vendored scripts, asv's nav links the page once."""
    site.vendor_site(template_site, vendor_cache)
    page = site.add_reports(template_site, sample_reports, report_vendor_cache)
    site.add_reports(template_site, sample_reports, report_vendor_cache)  # again: replaced, not duplicated
    assert page == template_site / "reports" / "index.html"
    nav = (template_site / "index.html").read_text(encoding="utf-8")
    assert nav.count(f'id="{site.NAV_LINK_ID}"') == 1 and 'href="reports/index.html"' in nav
    text = page.read_text(encoding="utf-8")
    views = ("report/index.html", "profile-profile-direct/icicle/index.html", "memory-profile-grid/flamegraph.html")
    for href in views:
        assert f'href="{href}"' in text, href
    for image in site.REPORT_IMAGES:
        assert f'src="report/{image}"' in text, image
    assert "optimizer and glue" in text and "peak heap" in text
    flame = (template_site / "reports" / "memory-profile-grid" / "flamegraph.html").read_text(encoding="utf-8")
    assert REMOTE_TAG_RE.findall(flame) == []
    for asset in site.REPORT_ASSETS:
        assert f'"../{asset.local_path}"' in flame, asset.cdn_url
        assert (template_site / "reports" / asset.local_path).stat().st_size > 1000, asset
    assert not list((template_site / "reports").rglob("*.bin"))  # memray's capture stays out of the site


def test_add_reports_refuses_an_empty_folder(template_site: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(site.SiteError, match="holds no report, profile or memory output"):
        site.add_reports(template_site, tmp_path / "empty")
    assert not (template_site / "reports").exists()
    with pytest.raises(site.SiteError, match="does not exist"):
        site.add_reports(template_site, tmp_path / "missing")


# ------------------------------------------------------------------------------------------------------- end to end

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


@pytest.fixture(scope="module")
def published_site(
    tmp_path_factory: pytest.TempPathFactory, vendor_cache: Path, report_vendor_cache: Path, sample_reports: Path
) -> Path:
    """A throwaway asv project with results for 3 commits, published and vendored with the sample reports."""
    pytest.importorskip("asv", reason="asv is not installed (the bench extra)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    project = tmp_path_factory.mktemp("asv-project")
    home = project / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),  # asv writes ~/.asv-machine.json here
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
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
    _run([*asv, "machine", "--machine", "ci-test", "--yes"], project, env)
    for sha in shas:
        _run(["git", "checkout", "-q", sha], project, env)
        _run([*asv, "run", "--python=same", "--set-commit-hash", sha, "--quick", "--machine", "ci-test"], project, env)
    _run(["git", "checkout", "-q", "main"], project, env)
    with contextlib.chdir(project):
        html = site.publish("asv.conf.json", cache_dir=vendor_cache, reports_dir=sample_reports)
    return (project / html).resolve()


@pytest.mark.slow
def test_published_site_is_self_contained(published_site: Path) -> None:
    """`publish` leaves no off-site script or stylesheet and has graph data for 3 commits."""
    assert REMOTE_TAG_RE.findall((published_site / "index.html").read_text(encoding="utf-8")) == []
    benchmarks = json.loads((published_site / "index.json").read_text(encoding="utf-8"))["benchmarks"]
    assert sorted(benchmarks) == ["bench.time_sum", "bench.track_value"]
    assert site.pick_benchmark(published_site, sorted(benchmarks)) == "bench.time_sum"


@pytest.mark.slow
@needs_chromium
def test_browser_check_passes_on_published_site(published_site: Path, tmp_path: Path) -> None:
    """The browser check passes on the vendored site: grid, graph with 3 points, no console errors; PNGs saved."""
    pytest.importorskip("playwright", reason="playwright is not installed")
    grid, graph = tmp_path / "grid.png", tmp_path / "graph.png"
    report = site.check_site(published_site, "bench.track_value", grid, graph)
    assert sorted(report.grid_names) == sorted(report.benchmarks) == ["bench.time_sum", "bench.track_value"]
    assert report.graph_benchmark == "bench.track_value"
    assert max(report.graph_files.values()) == 3
    assert report.plot["series"] == [3] and report.plot["coloured"] >= 20
    assert report.summarylist_rows == 2
    assert report.problems == []
    # tradeoff, out of sample, kernel scaling, optimizer scaling
    assert report.reports["reports/index.html"] == "4/4 images loaded"
    assert report.reports["report/index.html"] == "4/4 images loaded"
    for view in ("profile-profile-direct/icicle/index.html", "memory-profile-grid/flamegraph.html"):
        assert int(report.reports[view].split()[0]) >= site.MIN_CHART_RECTS, report.reports
    for png in (grid, graph):
        assert png.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
@needs_chromium
def test_browser_check_fails_without_vendor_folder(published_site: Path, tmp_path: Path) -> None:
    """With vendor/ deleted the page errors, and `check` exits 1 naming the failed requests."""
    pytest.importorskip("playwright", reason="playwright is not installed")
    broken = Path(shutil.copytree(published_site, tmp_path / "html"))
    shutil.rmtree(broken / "vendor")
    shots = tmp_path / "shots"
    result = subprocess.run(
        [sys.executable, str(SITE_PY), "check", "--html-dir", str(broken), "--screenshot-dir", str(shots)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "site check FAILED" in result.stderr
    assert re.search(r"HTTP 404 for http://127\.0\.0\.1:\d+/vendor/jquery/dist/jquery\.min\.js", result.stderr)
    assert "summary grid did not render every benchmark" in result.stderr
    assert (shots / "site-grid.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
@needs_chromium
def test_browser_check_fails_without_report_assets(published_site: Path, tmp_path: Path) -> None:
    """With reports/vendor/ deleted memray's flame graph cannot draw, and `check` says so; so for missing pictures."""
    pytest.importorskip("playwright", reason="playwright is not installed")
    broken = Path(shutil.copytree(published_site, tmp_path / "html"))
    shutil.rmtree(broken / "reports" / "vendor")
    (broken / "reports" / "report" / "tradeoff.png").unlink()
    (broken / "reports" / "report" / "oos-stats.png").unlink()
    with pytest.raises(site.CheckFailed) as failed:
        site.check_site(broken, "bench.track_value", None, None, timeout_s=10)
    text = "\n".join(failed.value.failures)
    assert "memory-profile-grid/flamegraph.html drew no chart" in text
    assert "reports page: image(s) did not load: report/tradeoff.png, report/oos-stats.png" in text
    assert "report/index.html: image(s) did not load: tradeoff.png, oos-stats.png" in text
    assert re.search(r"HTTP 404 for http://127\.0\.0\.1:\d+/reports/vendor/d3/dist/d3\.min\.js", text)
