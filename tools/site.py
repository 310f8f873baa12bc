"""Publish the asv site self-contained, with the reports page.

`asv publish` writes a site whose index.html loads jQuery, flot, stupidtable, blueimp-md5 and bootstrap from CDNs;
memray's flame graph pages load bootstrap, jQuery, popper, lodash, plotly and d3 from jsdelivr.  `publish`:

* installs those npm packages with `npm ci --ignore-scripts` from `tools/site/package-lock.json`, which pins the
  exact versions the pages ask for with their sha512 integrity (npm checks every tarball against it; npm's cache
  makes reruns work offline);
* runs `asv publish` into a temporary folder, copies the files the pages load (and their licences and fonts) into
  `vendor/` (and `reports/vendor/`), and points each known CDN URL at its copy (`ASSETS`, `REPORT_ASSETS`:
  `{cdn_url: path in node_modules}`, `str.replace`), dropping the CDN `integrity`/`crossorigin`/`referrerpolicy`
  attributes.  A `<script>`, `<link>` or `<img>` still loading from another host is an error naming file and URL;
* with `--reports DIR` (the outputs of `marketsim-opt report`, `profile` and `memory`) copies them into `reports/`
  (memray's `.bin` captures left out), renders `reports/index.html` (`tools/site/reports.html.j2`, pictures inline)
  and links it from asv's navigation bar;
* only then swaps the new site in for the html folder, which must be absent or an earlier asv site (nothing else
  is deleted): a failure leaves the old site as it was.

The check in headless Chromium is a pytest module (pytest-playwright): every benchmark in the grid, a graph draws
points of more than one commit, the machine's details, the benchmark list, the reports' pictures and charts, and
no request failing or leaving the host.

Usage (from the repo root):

    python tools/site.py publish [--config asv.conf.json] [--html-dir DIR] [--reports DIR]
    python -m pytest tests/tools/test_site_browser.py --site-dir html    # the check
    python -m http.server --bind 127.0.0.1 --directory html 8080           # browse it

`publish` exits 1 with a one-line error on failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2

if str(Path(__file__).resolve().parent) not in sys.path:  # the tools' shared _atomic, also when loaded by path
    sys.path.append(str(Path(__file__).resolve().parent))
from _atomic import write_text_atomic  # noqa: E402

SITE = Path(__file__).resolve().with_name("site")  # package.json, package-lock.json, reports.html.j2
VENDOR = "vendor"
REPORTS = "reports"
NAV_LINK_ID = "marketsim-reports"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_JSD = "https://cdn.jsdelivr.net/npm"

#: asv 0.6.6's index.html.  npm's flot 0.8.3 ships no minified files, so the plain ones replace cdnjs's minified
#: builds (same code).  cdnjs's stupidtable 1.0.1 is npm's stupid-table-plugin, of which the registry serves only
#: 1.1.3 (the API asv uses, `stupidtable(sortFns)` and `stupidsort(dir)`, is unchanged; the check's list exercises it).
ASSETS = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery/dist/jquery.min.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.min.js": "flot/jquery.flot.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.time.min.js": "flot/jquery.flot.time.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.selection.min.js": "flot/jquery.flot.selection.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.categories.min.js": "flot/jquery.flot.categories.js",
    f"{_JSD}/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "flot-orderbars/js/jquery.flot.orderBars.js",
    f"{_CDNJS}/stupidtable/1.0.1/stupidtable.min.js": "stupid-table-plugin/stupidtable.min.js",
    f"{_CDNJS}/blueimp-md5/2.19.0/js/md5.min.js": "blueimp-md5/js/md5.min.js",
    f"{_JSD}/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    f"{_JSD}/bootstrap@3.1.1/dist/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
}
#: Copied besides: the licences (flot-orderbars' is in its package.json), and the fonts bootstrap.min.css loads.
EXTRAS = (
    *(f"{p}/LICENSE.txt" for p in ("jquery", "flot", "blueimp-md5")),
    "flot-orderbars/package.json",
    "stupid-table-plugin/LICENSE",
    "bootstrap/LICENSE",
    *(f"bootstrap/dist/fonts/glyphicons-halflings-regular.{ext}" for ext in ("eot", "svg", "ttf", "woff")),
)
#: memray 1.20.0's flamegraph.html (pinned in constraints.txt).  jsdelivr's plotly.js@2.11.1/dist/plotly.min.js is
#: the build npm publishes alone as plotly.js-dist-min (1 MB instead of plotly.js's 80 MB).
REPORT_ASSETS = {
    f"{_JSD}/bootstrap@4.6.0/dist/css/bootstrap.min.css": "bootstrap-4/dist/css/bootstrap.min.css",
    f"{_JSD}/bootstrap@4.6.0/dist/js/bootstrap.min.js": "bootstrap-4/dist/js/bootstrap.min.js",
    f"{_JSD}/jquery@3.6.0/dist/jquery.min.js": "jquery-3.6/dist/jquery.min.js",
    f"{_JSD}/popper.js@1.16.1/dist/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    f"{_JSD}/lodash@4.17.21/lodash.min.js": "lodash/lodash.min.js",
    f"{_JSD}/plotly.js@2.11.1/dist/plotly.min.js": "plotly.js-dist-min/plotly.min.js",
    f"{_JSD}/d3@7.9.0/dist/d3.min.js": "d3/dist/d3.min.js",
    f"{_JSD}/d3-scale-chromatic@3.1.0/dist/d3-scale-chromatic.min.js": (
        "d3-scale-chromatic/dist/d3-scale-chromatic.min.js"
    ),
    f"{_JSD}/d3-flame-graph@4.1.3/dist/d3-flamegraph.min.js": "d3-flame-graph/dist/d3-flamegraph.min.js",
}
REPORT_EXTRAS = (
    *(f"{p}/LICENSE" for p in ("bootstrap-4", "lodash", "plotly.js-dist-min", "d3", "d3-scale-chromatic")),
    *("jquery-3.6/LICENSE.txt", "popper.js/package.json", "d3-flame-graph/LICENSE"),
)
#: What `marketsim-opt report/profile/memory` write, by the file that identifies each kind of output folder.
REPORT_KINDS = (
    ("index.html", "Regret against time, out-of-sample profit, and the kernel's scaling"),
    ("icicle/index.html", "cProfile icicle view"),
    ("flamegraph.html", "memray flame graph"),
)
#: The pictures of a `marketsim-opt report` folder shown on the reports page.
REPORT_IMAGES = ("tradeoff.png", "oos-stats.png", "kernel-scaling.png", "optimizer-scaling.png")
#: A tag that makes the browser load something from another host.
REMOTE_RE = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?((?:[a-z][a-z0-9+.-]*:)?//[^\"'\s>]*)", re.I
)
_CDN_ATTRS_RE = re.compile(r"""\s(?:integrity|crossorigin|referrerpolicy)\s*=\s*(?:"[^"]*"|'[^']*')""", re.I)


class SiteError(Exception):
    """Publishing failed; the message names the file, URL or command."""


def npm_install(prefix: Path = SITE) -> Path:
    """`npm ci --ignore-scripts` in `prefix` (its lockfile's sha512 checks every tarball); returns node_modules."""
    npm = shutil.which("npm")
    if npm is None:
        raise SiteError("no `npm` on PATH (Debian: apt-get install -y npm)")
    cmd = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--prefix", str(prefix)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [ln.removeprefix("npm error").strip() for ln in result.stderr.splitlines()]
        raise SiteError(f"`{' '.join(cmd)}` failed ({result.returncode}): {' '.join(filter(None, lines))[:600]}")
    return prefix / "node_modules"


def vendor(
    root: Path, html_files: list[Path], assets: dict[str, str], extras: tuple[str, ...], node_modules: Path
) -> None:
    """Copy `assets` and `extras` from `node_modules` into `root/vendor/` and point `html_files` at them.

    Every file is checked (no remote reference left, every source present) before anything is written.
    """
    texts = {}
    for path in html_files:
        old = text = path.read_text(encoding="utf-8")
        prefix = "../" * (len(path.relative_to(root).parts) - 1)
        for url, local in assets.items():
            text = text.replace(f'"{url}"', f'"{prefix}{VENDOR}/{local}"')
        if text != old:
            texts[path] = _CDN_ATTRS_RE.sub("", text)
        remote = REMOTE_RE.findall(text)
        if remote:
            raise SiteError(
                f"{path}: loads {', '.join(remote)} from another host after vendoring "
                "(the page's asset list changed: add it to ASSETS/REPORT_ASSETS in tools/site.py)"
            )
    files = [*assets.values(), *extras]
    missing = [f for f in files if not (node_modules / f).is_file()]
    if missing:
        raise SiteError(f"not in {node_modules}: {', '.join(missing)} (tools/site/package.json changed?)")
    for rel in files:
        (root / VENDOR / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / rel, root / VENDOR / rel)
    for path, text in texts.items():
        write_text_atomic(path, text)


def _kind(folder: Path) -> tuple[str, str] | None:
    return next((k for k in REPORT_KINDS if (folder / k[0]).is_file()), None)


def add_reports(html_dir: Path, reports_dir: Path, node_modules: Path) -> Path:
    """Copy the output folders of `reports_dir` into `html_dir/reports/` with memray's assets vendored, render its
    index.html and link it from the site's navigation bar; returns the reports page."""
    index = html_dir / "index.html"
    if not index.is_file():
        raise SiteError(f"{index} does not exist (publish the site first)")
    if not reports_dir.is_dir():
        raise SiteError(f"reports folder {reports_dir} does not exist (run `marketsim-opt report` and friends)")
    folders = [p for p in sorted(reports_dir.iterdir()) if p.is_dir() and p.name != VENDOR and _kind(p)]
    if not folders:
        raise SiteError(f"{reports_dir} holds no report, profile or memory output (run `marketsim-opt report`)")
    nav = '<ul class="nav navbar-nav navbar-left">'
    text = index.read_text(encoding="utf-8")
    if f'id="{NAV_LINK_ID}"' not in text and nav not in text:
        raise SiteError(f"{index} has no `{nav}` to add the reports link to (asv's template changed)")
    tmp = Path(tempfile.mkdtemp(dir=html_dir, prefix=".reports.", suffix=".tmp"))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the pages from a web server
    try:
        sections = []
        for folder in folders:
            shutil.copytree(folder, tmp / folder.name, ignore=shutil.ignore_patterns("*.bin"))
            entry, what = _kind(folder)
            summary = folder / "summary.txt"
            sections.append(
                dict(
                    name=folder.name,
                    entry=entry,
                    what=what,
                    images=[i for i in REPORT_IMAGES if (folder / i).is_file()],
                    summary=summary.read_text(encoding="utf-8") if summary.is_file() else None,
                    prof=entry.startswith("icicle") and (folder / "profile.prof").is_file(),
                )
            )
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(SITE), autoescape=True, undefined=jinja2.StrictUndefined
        )
        (tmp / "index.html").write_text(env.get_template("reports.html.j2").render(sections=sections), "utf-8")
        vendor(tmp, sorted(tmp.rglob("*.html")), REPORT_ASSETS, REPORT_EXTRAS, node_modules)
        if (html_dir / REPORTS).exists():
            shutil.rmtree(html_dir / REPORTS)
        os.replace(tmp, html_dir / REPORTS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if f'id="{NAV_LINK_ID}"' not in text:
        link = (
            f'\n        <li><p class="navbar-text"><a id="{NAV_LINK_ID}" class="navbar-link" '
            f'href="{REPORTS}/index.html">Reports: profiles, memory, regret vs time</a></p></li>'
        )
        write_text_atomic(index, text.replace(nav, nav + link, 1))
    return html_dir / REPORTS / "index.html"


def publish(config: Path, html_dir: Path | None = None, reports_dir: Path | None = None) -> Path:
    """`asv publish` into a temporary folder, vendor its assets, add the reports, swap it in; returns the html dir."""
    if not config.is_file():
        raise SiteError(f"asv config {config} not found")
    if html_dir is None:
        from asv import util

        html_dir = Path(util.load_json(str(config), js_comments=True).get("html_dir", "html"))
    if html_dir.exists() and not (html_dir / "index.json").is_file():
        raise SiteError(f"{html_dir} exists and is not an asv site (no index.json): not replacing it")
    node_modules = npm_install()
    html_dir.absolute().parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=html_dir.absolute().parent, prefix=f".{html_dir.name}.", suffix=".tmp"))
    old = tmp.with_suffix(".old")
    try:
        cmd = [sys.executable, "-m", "asv", "publish", "--config", str(config), "--html-dir", str(tmp)]
        if subprocess.run(cmd, check=False).returncode != 0:
            raise SiteError(f"`{' '.join(cmd)}` failed")
        vendor(tmp, sorted(tmp.glob("*.html")), ASSETS, EXTRAS, node_modules)
        if reports_dir is not None:
            add_reports(tmp, reports_dir, node_modules)
        if html_dir.exists():
            os.replace(html_dir, old)
        try:
            os.replace(tmp, html_dir)
        except OSError:
            os.replace(old, html_dir)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return html_dir


def main(argv: list[str] | None = None) -> int:
    """`publish`: returns the exit status (1 with a one-line error on failure)."""
    parser = argparse.ArgumentParser(prog="tools/site.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish", help="asv publish, vendor the CDN assets, add the reports page")
    p.add_argument("--config", type=Path, default=Path("asv.conf.json"), help="asv config (default: %(default)s)")
    p.add_argument("--html-dir", type=Path, default=None, help="output folder (default: html_dir of the config)")
    p.add_argument("--reports", type=Path, default=None, help="folder of report/profile/memory outputs to include")
    args = parser.parse_args(argv)
    try:
        out = publish(args.config, args.html_dir, args.reports)
    except SiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"published {out}, assets vendored" + (f", with the reports of {args.reports}" if args.reports else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
