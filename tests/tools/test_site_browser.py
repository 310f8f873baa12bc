"""The published site in headless Chromium (pytest-playwright's `page`, Debian's chromium): the site check.

`nox -s publish` runs it on html/ (`python -m pytest tests/tools/test_site_browser.py --site-dir html`); in the test
suite it checks a throwaway published project (tests/tools/conftest.py).  Each check returns its failures, so the
same code passes the real site and is shown to fail on broken copies (vendor/ or report assets removed).  Every
check also fails on a console error, a page error, a failed request, an HTTP status >= 400, or a request to a host
other than the local server.  Screenshots of the grid and a graph go to artifacts/ (with --site-dir).
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest

pytest.importorskip("pytest_playwright", reason="pytest-playwright is not installed (the bench extra)")
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import Page  # noqa: E402

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMEOUT_MS = 30_000
MIN_CHART_RECTS = 3  # tuna's icicle and memray's flame graph draw their boxes as SVG rects
_PLOT_JS = """() => {
  const el = document.querySelector('#main-graph'), plot = el && window.jQuery && jQuery(el).data('plot');
  const canvas = el && el.querySelector('canvas.flot-base');
  if (!plot || !canvas) return null;
  const series = plot.getData().map(s => (s.data || []).filter(p => p && p[1] !== null && p[1] !== undefined).length);
  const img = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0;
  for (let i = 0; i < img.length; i += 4)
    if (img[i + 3] > 0 && Math.max(img[i], img[i + 1], img[i + 2]) - Math.min(img[i], img[i + 1], img[i + 2]) > 40)
      coloured++;
  const box = canvas.getBoundingClientRect();
  return {series, width: box.width, height: box.height, coloured};
}"""
_IMAGES_JS = "() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"


def watch(page: Page, base: str, problems: list[str]) -> Page:
    """Record in `problems` every console/page error, failed request, HTTP >= 400 and off-host request of `page`."""
    host = urllib.parse.urlsplit(base).netloc

    def route(r) -> None:
        if urllib.parse.urlsplit(r.request.url).netloc == host:
            r.continue_()
        else:
            problems.append(f"request to another host: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e.message}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} for {r.url}"))
    page.set_default_timeout(TIMEOUT_MS)
    return page


def wait(page: Page, js: str, arg: object, what: str, failures: list[str], timeout_ms: int = TIMEOUT_MS) -> bool:
    """Wait until `js(arg)` is true; a failure when it times out or asv went to error.html (a script did not load)."""
    try:
        page.wait_for_function(
            f"a => (({js})(a)) || location.pathname.endsWith('/error.html')", arg=arg, timeout=timeout_ms
        )
    except PlaywrightError:
        failures.append(f"{what} (timed out at {page.url})")
        return False
    if page.evaluate(f"a => !!(({js})(a))", arg):
        return True
    failures.append(f"{what}: asv went to {page.url} (a script failed to load)")
    return False


def screenshot(page: Page, path: Path) -> None:
    """The whole page: grow the viewport to it (a full_page capture makes flot throw on a zero-width resize)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = min(page.evaluate("() => document.documentElement.scrollHeight"), 8000)
    page.set_viewport_size({"width": 1280, "height": max(height, 720)})
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.screenshot(path=str(path))


def index(html: Path) -> dict:
    return json.loads((html / "index.json").read_text(encoding="utf-8"))


def check_grid(page: Page, base: str, html: Path, shot: Path | None = None, timeout_ms: int = TIMEOUT_MS) -> list:
    """The summary grid shows every benchmark of index.json; with reports, the navigation bar links them."""
    failures: list[str] = []
    watch(page, base, failures)
    benchmarks = list(index(html)["benchmarks"])
    page.goto(f"{base}/index.html#/")
    js = "n => document.querySelectorAll('#summarygrid-display a.benchmark-container').length >= n"
    wait(page, js, len(benchmarks), "summary grid did not render every benchmark", failures, timeout_ms)
    hrefs = page.eval_on_selector_all("#summarygrid-display a.benchmark-container", "e => e.map(a => a.hash)")
    missing = set(benchmarks) - {urllib.parse.unquote(h[1:]) for h in hrefs}
    if missing:
        failures.append(f"summary grid is missing benchmark(s): {', '.join(sorted(missing))}")
    if (html / "reports" / "index.html").is_file() and not page.locator(".navbar a[href='reports/index.html']").count():
        failures.append("the site's navigation bar has no link to reports/index.html")
    if shot is not None:
        screenshot(page, shot)
    return failures


def graph_points(html: Path, name: str) -> int:
    """The most non-null points in one of the benchmark's graph JSON files (not graphs/summary)."""
    safe = re.sub('[<>:"/\\\\^|?*\x00-\x1f]', "_", name)
    files = [p for p in (html / "graphs").rglob(f"{safe}.json") if p.parent.name != "summary"]
    return max((sum(v[1] is not None for v in json.loads(p.read_text())) for p in files), default=0)


def check_graph(page: Page, base: str, html: Path, shot: Path | None = None) -> list[str]:
    """A graph page draws a flot plot with more than one point; its machine button shows the machine's details."""
    failures: list[str] = []
    watch(page, base, failures)
    data = index(html)
    name = next((b for b in data["benchmarks"] if graph_points(html, b) > 1), None)
    if name is None:
        return ["no benchmark has graph data with more than one point (needs results of >1 commit)"]
    page.goto(f"{base}/index.html#{urllib.parse.quote(name, safe='')}")
    if wait(
        page,
        f"() => {{ const r = ({_PLOT_JS})(); return r && Math.max(...r.series) > 1 && r.coloured >= 20; }}",
        None,
        f"graph page of {name} drew no plot of more than one point",
        failures,
    ):
        plot = page.evaluate(_PLOT_JS)
        if plot["width"] < 200 or plot["height"] < 100:
            failures.append(f"graph canvas of {name} is too small: {plot['width']}x{plot['height']}")
    for machine, details in data["machines"].items():
        absent = [f for f in ("cpu", "arch", "os", "num_cpu", "ram") if not details.get(f)]
        if absent:
            failures.append(f"machine {machine}'s machine.json has no {', '.join(absent)}")
        page.get_by_role("button", name=machine, exact=True).first.hover()
        tip = page.locator(".tooltip").first
        text = (
            tip.inner_text()
            if wait(
                page,
                "() => !!document.querySelector('.tooltip')",
                None,
                f"machine {machine} shows no details",
                failures,
            )
            else ""
        )
        shown = [f"{k}: {v}" for k, v in details.items() if k != "version" and f"{k}: {v}" not in text]
        if text and shown:
            failures.append(f"machine {machine}'s details lack {shown} (shown: {text!r})")
        page.mouse.move(0, 0)
    if shot is not None:
        screenshot(page, shot)
    return failures


def check_summarylist(page: Page, base: str) -> list[str]:
    """The benchmark list (stupidtable) renders its rows."""
    failures: list[str] = []
    watch(page, base, failures)
    page.goto(f"{base}/index.html#/summarylist")
    js = "() => document.querySelectorAll('#summarylist-body table tbody tr').length > 0"
    wait(page, js, None, "benchmark list (#/summarylist) rendered no table rows", failures)
    return failures


def check_reports(page: Page, base: str, timeout_ms: int = TIMEOUT_MS) -> list[str]:
    """The reports page and every view it links: pictures load, icicle views and flame graphs draw SVG boxes."""
    failures: list[str] = []
    watch(page, base, failures)
    page.goto(f"{base}/reports/index.html")
    broken = [src for src, ok in page.evaluate(_IMAGES_JS) if not ok]
    if broken:
        failures.append(f"reports page: image(s) did not load: {', '.join(broken)}")
    links = page.eval_on_selector_all("section a[href$='.html']", "e => e.map(a => a.getAttribute('href'))")
    if not links:
        failures.append("reports page links to no report, profile or memory view")
    for href in dict.fromkeys(links):
        view = watch(page.context.new_page(), base, failures)
        view.goto(f"{base}/reports/{href}")
        if href.endswith("icicle/index.html") or href.endswith("flamegraph.html"):
            js = "n => document.querySelectorAll('svg rect').length >= n"
            wait(
                view, js, MIN_CHART_RECTS, f"{href} drew no chart (< {MIN_CHART_RECTS} SVG rects)", failures, timeout_ms
            )
        else:
            images = view.evaluate(_IMAGES_JS)
            broken = [src for src, ok in images if not ok]
            if not images or broken:
                failures.append(f"{href}: image(s) did not load: {', '.join(broken) or 'none on the page'}")
    return failures


# ------------------------------------------------------------------------------------------------------- the check


@pytest.fixture(scope="session")
def shots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: artifacts/ for a --site-dir, a temporary folder for the throwaway site."""
    return ARTIFACTS if request.config.getoption("--site-dir", default=None) else tmp_path_factory.mktemp("shots")


def test_grid_lists_every_benchmark(page: Page, site_url: str, site_dir: Path, shots: Path) -> None:
    assert check_grid(page, site_url, site_dir, shots / "site-grid.png") == []
    assert (shots / "site-grid.png").read_bytes()[:8] == PNG_MAGIC


def test_graph_draws_and_machine_details_show(page: Page, site_url: str, site_dir: Path, shots: Path) -> None:
    assert check_graph(page, site_url, site_dir, shots / "site-graph.png") == []
    assert (shots / "site-graph.png").read_bytes()[:8] == PNG_MAGIC


def test_benchmark_list_renders(page: Page, site_url: str) -> None:
    assert check_summarylist(page, site_url) == []


def test_reports_draw(page: Page, site_url: str, site_dir: Path) -> None:
    if not (site_dir / "reports" / "index.html").is_file():
        pytest.skip(f"{site_dir} has no reports/ (publish --reports DIR)")
    assert check_reports(page, site_url) == []


# ------------------------------------------------------------------------------------------ the check's own tests


@pytest.fixture
def broken_copy(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of the throwaway site, to break (tests using it are deselected on a --site-dir: they check the check)."""
    return Path(shutil.copytree(request.getfixturevalue("published_site"), tmp_path / "html"))


def test_check_fails_without_vendor_folder(page: Page, broken_copy: Path, serve_dir) -> None:
    shutil.rmtree(broken_copy / "vendor")
    with serve_dir(broken_copy) as base:
        text = "\n".join(check_grid(page, base, broken_copy, timeout_ms=10_000))
    assert "summary grid did not render every benchmark" in text
    assert re.search(r"HTTP 404 for http://127\.0\.0\.1:\d+/vendor/jquery/dist/jquery\.min\.js", text)


def test_check_fails_without_report_assets(page: Page, broken_copy: Path, serve_dir) -> None:
    shutil.rmtree(broken_copy / "reports" / "vendor")
    (broken_copy / "reports" / "report" / "tradeoff.png").unlink()
    (broken_copy / "reports" / "report" / "oos-stats.png").unlink()
    with serve_dir(broken_copy) as base:
        text = "\n".join(check_reports(page, base, timeout_ms=10_000))
    assert "memory-profile-grid/flamegraph.html drew no chart" in text
    assert "reports page: image(s) did not load: report/tradeoff.png, report/oos-stats.png" in text
    assert "report/index.html: image(s) did not load: tradeoff.png, oos-stats.png" in text
    assert re.search(r"HTTP 404 for http://127\.0\.0\.1:\d+/reports/vendor/d3/dist/d3\.min\.js", text)


def test_check_fails_on_a_request_to_another_host(page: Page, broken_copy: Path, serve_dir) -> None:
    index_html = broken_copy / "index.html"
    index_html.write_text(
        index_html.read_text().replace("</head>", '<script src="https://cdn.example.invalid/x.js"></script></head>')
    )
    with serve_dir(broken_copy) as base:
        text = "\n".join(check_summarylist(page, base))
    assert "request to another host: https://cdn.example.invalid/x.js" in text


def test_check_fails_without_machine_details(page: Page, broken_copy: Path, serve_dir) -> None:
    data = json.loads((broken_copy / "index.json").read_text(encoding="utf-8"))
    for details in data["machines"].values():
        del details["cpu"], details["ram"]
    (broken_copy / "index.json").write_text(json.dumps(data), encoding="utf-8")
    with serve_dir(broken_copy) as base:
        text = "\n".join(check_graph(page, base, broken_copy))
    assert "machine ci-test's machine.json has no cpu, ram" in text
