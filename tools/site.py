"""Publish the asv site self-contained, and check it in a real headless browser.

`asv publish` writes a static site whose index.html loads jQuery, flot (+ plugins), stupidtable, blueimp-md5 and
bootstrap from public CDNs; where those cannot be reached the page only shows asv's error.html. This tool vendors
those assets into the site from the npm registry, at publish time:

* for each package/version (the `PACKAGES` table) it reads the registry metadata
  (`https://registry.npmjs.org/<name>/<version>`), downloads `dist.tarball`, and checks it against `dist.integrity`
  (SRI sha512) and against the integrity pinned here;
* tarballs and metadata are cached in `.asv/vendor-cache` (repo root; gitignored), so reruns work offline;
* only the files the site needs are extracted, into `<html_dir>/vendor/<package>/...`;
* every `<script>`/`<link>` that points at one of the known CDN URLs (the `ASSETS` table) in the site's top-level
  html files is rewritten to the local relative path, without the CDN `integrity`/`crossorigin`/`referrerpolicy`
  attributes. Each file is written to a temp file and `os.replace`d, and nothing is rewritten unless every file
  could be; a `<script>`/`<link>` still pointing off-site afterwards (asv changed its list) is an error.

The check serves the site on 127.0.0.1 (an ephemeral port) and opens it in Debian's chromium through playwright
(`executable_path=shutil.which("chromium")`; no `playwright install`). It requires that

1. the summary grid (`#/`) shows every benchmark of `index.json` (asv renders each as
   `<a class="benchmark-container" href="#<name>">` in `#summarygrid-display`);
2. a benchmark's graph page (`#<benchmark name>`) draws a flot plot (`#main-graph canvas.flot-base`, non-trivial
   size, coloured pixels) with more than one point, and that the graph JSON the page loaded from `graphs/...` has
   more than one non-null point;
3. the benchmark list (`#/summarylist`, which uses stupidtable) renders its table; and that no page logged a console
   error, threw, had a request fail or answered >= 400, or tried to reach a host other than the local server.

4. when the site has `reports/` (`publish --reports DIR`: the outputs of `marketsim-opt report`, `profile` and
   `memory`), the navigation bar links `reports/index.html`, every image on that page and on the report page it
   links to loads, and each icicle view (tuna) and memray flame graph it links to draws its chart (SVG rects).
   memray's flame graph page loads bootstrap, jQuery, d3, d3-flame-graph, lodash and plotly from jsdelivr; those
   are vendored from npm into `reports/vendor/` the same way (the `REPORT_PACKAGES` table).

Full-page screenshots of the grid and the graph page are saved (default `artifacts/site-grid.png`,
`artifacts/site-graph.png`), whether or not the checks pass.

Usage (from the repo root):

    python tools/site.py publish [--html-dir DIR] [--config asv.conf.json] [--cache-dir DIR] [--reports DIR]
    python tools/site.py vendor HTML_DIR [--cache-dir DIR]
    python tools/site.py check [--html-dir html] [--benchmark NAME] [--screenshot-dir artifacts]
    python tools/site.py serve [--html-dir html] [--port 8080]

`check` exits 0 when every check passed, 1 when one failed (each failure is printed), 2 when the check could not run
(no chromium, no playwright, no html dir). `publish` and `vendor` exit 1 with a one-line error on failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE_DIR = REPO_ROOT / ".asv" / "vendor-cache"
REGISTRY = "https://registry.npmjs.org"
VENDOR_DIR = "vendor"
DOWNLOAD_TIMEOUT_S = 60
MAX_PRINTED_FAILURES = 25
MAX_SCREENSHOT_PX = 8000


class SiteError(Exception):
    """Vendoring or publishing failed (the message says which package/URL/file)."""


class CheckFailed(Exception):
    """The browser check ran and at least one check failed; `failures` lists them."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


class HarnessError(Exception):
    """The browser check could not run at all (no chromium, no playwright, no html dir)."""


@dataclass(frozen=True)
class Package:
    """One npm package version, with the integrity its registry metadata must carry."""

    name: str
    version: str
    integrity: str
    #: extra files (paths inside the tarball's `package/` folder) to extract besides the assets, e.g. fonts, licenses
    extra_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Asset:
    """A CDN URL in asv's index.html and the file of an npm package that replaces it."""

    cdn_url: str
    package: str
    path: str  # inside the tarball's `package/` folder

    @property
    def local_path(self) -> str:
        """The replacement's path relative to the html dir."""
        return f"{VENDOR_DIR}/{self.package}/{self.path}"


#: The npm packages, pinned to the versions asv 0.6.6's index.html loads. `integrity` is `dist.integrity` as the npm
#: registry publishes it; the metadata must agree and the tarball must hash to it.
#: stupidtable: cdnjs's "stupidtable/1.0.1" is the npm package `stupid-table-plugin`, but the registry this project
#: reaches serves only its 1.1.3 (1.0.1 answers 404). 1.1.3 keeps the API asv uses (`$.fn.stupidtable(sortFns)`,
#: `$.fn.stupidsort(dir)`); the browser check's `#/summarylist` step exercises it.
PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package(
            "jquery",
            "3.3.1",
            "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg==",
            ("LICENSE.txt",),
        ),
        Package(
            "flot",
            "0.8.3",
            "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ==",
            ("LICENSE.txt",),
        ),
        Package(
            "flot-orderbars",
            "1.0.0",
            "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA==",
            ("package.json",),  # the tarball has no LICENSE file; package.json names the MIT licence
        ),
        Package(
            "stupid-table-plugin",
            "1.1.3",
            "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg==",
            ("LICENSE",),
        ),
        Package(
            "blueimp-md5",
            "2.19.0",
            "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w==",
            ("LICENSE.txt",),
        ),
        Package(
            "bootstrap",
            "3.1.1",
            "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==",
            (
                "LICENSE",
                # bootstrap.min.css loads the glyphicons from ../fonts/
                "dist/fonts/glyphicons-halflings-regular.eot",
                "dist/fonts/glyphicons-halflings-regular.svg",
                "dist/fonts/glyphicons-halflings-regular.ttf",
                "dist/fonts/glyphicons-halflings-regular.woff",
            ),
        ),
    )
}

_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_JSDELIVR = "https://cdn.jsdelivr.net/npm"

#: Every CDN reference in asv 0.6.6's www/index.html. npm's flot 0.8.3 ships no minified files, so the plain ones
#: replace cdnjs's minified builds (same code); the jsdelivr/code.jquery.com files are byte-identical to npm's.
ASSETS: tuple[Asset, ...] = (
    Asset("https://code.jquery.com/jquery-3.3.1.min.js", "jquery", "dist/jquery.min.js"),
    Asset(f"{_CDNJS}/flot/0.8.3/jquery.flot.min.js", "flot", "jquery.flot.js"),
    Asset(f"{_CDNJS}/flot/0.8.3/jquery.flot.time.min.js", "flot", "jquery.flot.time.js"),
    Asset(f"{_CDNJS}/flot/0.8.3/jquery.flot.selection.min.js", "flot", "jquery.flot.selection.js"),
    Asset(f"{_CDNJS}/flot/0.8.3/jquery.flot.categories.min.js", "flot", "jquery.flot.categories.js"),
    Asset(
        f"{_JSDELIVR}/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js", "flot-orderbars", "js/jquery.flot.orderBars.js"
    ),
    Asset(f"{_CDNJS}/stupidtable/1.0.1/stupidtable.min.js", "stupid-table-plugin", "stupidtable.min.js"),
    Asset(f"{_CDNJS}/blueimp-md5/2.19.0/js/md5.min.js", "blueimp-md5", "js/md5.min.js"),
    Asset(f"{_JSDELIVR}/bootstrap@3.1.1/dist/js/bootstrap.min.js", "bootstrap", "dist/js/bootstrap.min.js"),
    Asset(f"{_JSDELIVR}/bootstrap@3.1.1/dist/css/bootstrap.min.css", "bootstrap", "dist/css/bootstrap.min.css"),
)

#: The npm packages behind the CDN references of memray 1.20.0's flamegraph.html (pinned in constraints.txt),
#: vendored into the site's `reports/vendor/`.  plotly.js: jsdelivr's `plotly.js@2.11.1/dist/plotly.min.js` is
#: the build npm publishes alone as `plotly.js-dist-min@2.11.1` (a 1 MB tarball instead of plotly.js's 80 MB).
REPORT_PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package(
            "bootstrap",
            "4.6.0",
            "sha512-Io55IuQY3kydzHtbGvQya3H+KorS/M9rSNyfCGCg9WZ4pyT/lCxIlpJgG1GXW/PswzC84Tr2fBYi+7+jFVQQBw==",
            ("LICENSE",),
        ),
        Package(
            "jquery",
            "3.6.0",
            "sha512-JVzAR/AjBvVt2BmYhxRCSYysDsPcssdmTFnzyLEts9qNwmjmu4JTAMYubEfwVOSwpQ1I1sKKFcxhZCI2buerfw==",
            ("LICENSE.txt",),
        ),
        Package(
            "popper.js",
            "1.16.1",
            "sha512-Wb4p1J4zyFTbM+u6WuO4XstYx4Ky9Cewe4DWrel7B0w6VVICvPwdOpotjzcf6eD8TsckVnIMNONQyPIUFOUbCQ==",
            ("package.json",),  # no LICENSE file in the tarball; package.json names the MIT licence
        ),
        Package(
            "lodash",
            "4.17.21",
            "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==",
            ("LICENSE",),
        ),
        Package(
            "plotly.js-dist-min",
            "2.11.1",
            "sha512-F9WWNht0D3yBLZGHbLoJNfvplXvy+GUPSsA/lCbMuYd/UwzSu6Vmyprxlps9Einw1LDS1hYBrJeioK0lE3ieXA==",
            ("LICENSE",),
        ),
        Package(
            "d3",
            "7.9.0",
            "sha512-e1U46jVP+w7Iut8Jt8ri1YsPOvFpg46k+K8TpCb0P+zjCkjkPnV7WzfDJzMHy1LnA+wj5pLT1wjO901gLXeEhA==",
            ("LICENSE",),
        ),
        Package(
            "d3-scale-chromatic",
            "3.1.0",
            "sha512-A3s5PWiZ9YCXFye1o246KoscMWqf8BsD9eRiJ3He7C9OBaxKhAd5TFCdEx/7VbKtxxTsu//1mMJFrEt572cEyQ==",
            ("LICENSE",),
        ),
        Package(
            "d3-flame-graph",
            "4.1.3",
            "sha512-NijuhJZhaTMwobVgwGQ67x9PovqMMHXBbs0FMHEGJvsWZGuL4M7OsB03v8mHdyVyHhnQYGsYnb5w021e9+R+RQ==",
            ("LICENSE",),
        ),
    )
}

REPORT_ASSETS: tuple[Asset, ...] = (
    Asset(f"{_JSDELIVR}/bootstrap@4.6.0/dist/css/bootstrap.min.css", "bootstrap", "dist/css/bootstrap.min.css"),
    Asset(f"{_JSDELIVR}/bootstrap@4.6.0/dist/js/bootstrap.min.js", "bootstrap", "dist/js/bootstrap.min.js"),
    Asset(f"{_JSDELIVR}/jquery@3.6.0/dist/jquery.min.js", "jquery", "dist/jquery.min.js"),
    Asset(f"{_JSDELIVR}/popper.js@1.16.1/dist/umd/popper.min.js", "popper.js", "dist/umd/popper.min.js"),
    Asset(f"{_JSDELIVR}/lodash@4.17.21/lodash.min.js", "lodash", "lodash.min.js"),
    Asset(f"{_JSDELIVR}/plotly.js@2.11.1/dist/plotly.min.js", "plotly.js-dist-min", "plotly.min.js"),
    Asset(f"{_JSDELIVR}/d3@7.9.0/dist/d3.min.js", "d3", "dist/d3.min.js"),
    Asset(
        f"{_JSDELIVR}/d3-scale-chromatic@3.1.0/dist/d3-scale-chromatic.min.js",
        "d3-scale-chromatic",
        "dist/d3-scale-chromatic.min.js",
    ),
    Asset(f"{_JSDELIVR}/d3-flame-graph@4.1.3/dist/d3-flamegraph.min.js", "d3-flame-graph", "dist/d3-flamegraph.min.js"),
)

#: Attributes that only make sense for a cross-origin CDN copy.
_DROPPED_ATTRS = frozenset({"integrity", "crossorigin", "referrerpolicy"})
_TAG_RE = re.compile(r"<(script|link)\b([^>]*)>", re.IGNORECASE)
_ATTR_RE = re.compile(r"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_REMOTE_RE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------------------- vendoring


def _sri_digest(integrity: str, what: str) -> tuple[str, bytes]:
    """The strongest (algorithm, digest) of an SRI string such as `sha512-<base64>`."""
    best: tuple[str, bytes] | None = None
    for token in integrity.split():
        algo, _, b64 = token.partition("-")
        if algo not in ("sha256", "sha384", "sha512"):
            continue
        try:
            digest = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise SiteError(f"{what}: malformed integrity {token!r}") from exc
        if best is None or int(algo[3:]) > int(best[0][3:]):
            best = (algo, digest)
    if best is None:
        raise SiteError(f"{what}: no sha256/sha384/sha512 in integrity {integrity!r}")
    return best


def _verify(data: bytes, integrity: str, what: str, url: str) -> None:
    """Raise SiteError unless `data` hashes to the SRI `integrity`."""
    algo, expected = _sri_digest(integrity, what)
    actual = hashlib.new(algo, data).digest()
    if actual != expected:
        raise SiteError(
            f"{what}: integrity check failed for {url}: expected {algo}-{base64.b64encode(expected).decode()}, "
            f"got {algo}-{base64.b64encode(actual).decode()} (a corrupt cached copy can be deleted to re-download)"
        )


def _download(url: str, what: str) -> bytes:
    """GET `url`; a SiteError naming the package and URL on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "marketsim-opt-site-vendor", "Accept": "*/*"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise SiteError(f"{what}: download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SiteError(f"{what}: download of {url} failed: {reason}") from exc


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _metadata(package: Package, cache_dir: Path, registry: str) -> dict:
    """The registry's version metadata (cached), checked to carry the pinned integrity."""
    what = f"npm package {package.name}@{package.version}"
    url = f"{registry.rstrip('/')}/{urllib.parse.quote(package.name, safe='@')}/{package.version}"
    cached = cache_dir / f"{package.name}-{package.version}.json"
    if cached.is_file():
        try:
            meta = json.loads(cached.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SiteError(f"{what}: cached metadata {cached} is not JSON (delete it to re-download)") from exc
    else:
        raw = _download(url, what)
        try:
            meta = json.loads(raw)
        except ValueError as exc:
            raise SiteError(f"{what}: metadata at {url} is not JSON") from exc
    dist = meta.get("dist") if isinstance(meta, dict) else None
    if not isinstance(dist, dict) or not dist.get("tarball") or not dist.get("integrity"):
        raise SiteError(f"{what}: metadata at {url} has no dist.tarball/dist.integrity")
    if meta.get("name") != package.name or meta.get("version") != package.version:
        raise SiteError(f"{what}: metadata at {url} describes {meta.get('name')}@{meta.get('version')}")
    if dist["integrity"] != package.integrity:
        raise SiteError(
            f"{what}: registry integrity {dist['integrity']} at {url} differs from the pinned {package.integrity}"
        )
    if not cached.is_file():
        _atomic_write_bytes(cached, json.dumps(meta, indent=1, sort_keys=True).encode())
    return meta


def fetch_tarball(package: Package, cache_dir: Path | str = DEFAULT_CACHE_DIR, registry: str = REGISTRY) -> bytes:
    """The package's tarball, from the cache or the registry, verified against its `dist.integrity`."""
    cache_dir = Path(cache_dir)
    what = f"npm package {package.name}@{package.version}"
    meta = _metadata(package, cache_dir, registry)
    url = meta["dist"]["tarball"]
    cached = cache_dir / f"{package.name}-{package.version}.tgz"
    if cached.is_file():
        data = cached.read_bytes()
        _verify(data, meta["dist"]["integrity"], what, f"{url} (cached as {cached})")
        return data
    data = _download(url, what)
    _verify(data, meta["dist"]["integrity"], what, url)
    _atomic_write_bytes(cached, data)
    return data


def _extract(package: Package, tarball: bytes, members: list[str], dest: Path) -> list[Path]:
    """Extract `package/<member>` for each member into `dest/<member>`; a SiteError when one is missing."""
    written = []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in members:
            rel = PurePosixPath(member)
            if rel.is_absolute() or ".." in rel.parts:
                raise SiteError(f"npm package {package.name}: refusing unsafe path {member!r}")
            try:
                info = tar.getmember(f"package/{member}")
            except KeyError as exc:
                raise SiteError(
                    f"npm package {package.name}@{package.version}: tarball has no file package/{member}"
                ) from exc
            fh = tar.extractfile(info) if info.isfile() else None
            if fh is None:
                raise SiteError(f"npm package {package.name}@{package.version}: package/{member} is not a file")
            target = dest.joinpath(*rel.parts)
            _atomic_write_bytes(target, fh.read())
            written.append(target)
    return written


def rewrite_html(text: str, assets: tuple[Asset, ...] = ASSETS, prefix: str = "") -> tuple[str, list[str]]:
    """Point known CDN `<script src>`/`<link href>` tags at the vendored copies (`prefix` + their local path).

    Returns the new text and the list of remote URLs that remain in `<script>`/`<link>` tags (should be empty).
    """
    by_url = {a.cdn_url: a for a in assets}
    remaining: list[str] = []

    def replace(match: re.Match[str]) -> str:
        tag, body = match.group(1), match.group(2)
        url_attr = "src" if tag.lower() == "script" else "href"
        attrs = [(m.group(1), m.group(2)) for m in _ATTR_RE.finditer(body)]
        url = next((_unquote(v) for k, v in attrs if k.lower() == url_attr and v is not None), None)
        if url is None or not _REMOTE_RE.match(url):
            return match.group(0)
        asset = by_url.get(url.strip())
        if asset is None:
            remaining.append(url)
            return match.group(0)
        parts = []
        for key, value in attrs:
            if key.lower() in _DROPPED_ATTRS:
                continue
            if key.lower() == url_attr:
                value = f'"{prefix}{asset.local_path}"'
            parts.append(key if value is None else f"{key}={value}")
        self_closing = body.rstrip().endswith("/")
        return f"<{tag} {' '.join(parts)}{'/' if self_closing else ''}>"

    return _TAG_RE.sub(replace, text), remaining


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] else value


def vendor_site(
    html_dir: Path | str, cache_dir: Path | str = DEFAULT_CACHE_DIR, registry: str = REGISTRY
) -> dict[str, list[str]]:
    """Vendor asv's CDN assets into `html_dir/vendor/` and rewrite its html files; returns {html file: urls replaced}.

    All downloads, checks and extraction happen before any html file is touched; each html file is replaced
    atomically, and none is replaced when any still references an unknown off-site script or stylesheet.
    """
    html_dir = Path(html_dir)
    index = html_dir / "index.html"
    if not index.is_file():
        raise SiteError(f"{index} does not exist (run `asv publish` first)")
    hint = "asv's asset list changed; update ASSETS/PACKAGES in tools/site.py"
    return vendor_tree(html_dir, sorted(html_dir.glob("*.html")), ASSETS, PACKAGES, hint, cache_dir, registry)


def vendor_tree(
    root: Path,
    html_files: list[Path],
    assets: tuple[Asset, ...],
    packages: dict[str, Package],
    hint: str,
    cache_dir: Path | str = DEFAULT_CACHE_DIR,
    registry: str = REGISTRY,
) -> dict[str, list[str]]:
    """Vendor `packages` into `root/vendor/` and point the CDN references of `html_files` (under `root`) at them.

    Returns {html file relative to root: urls replaced}.  Nothing is rewritten unless every file could be.
    """
    cache_dir = Path(cache_dir)

    # 1. rewrite in memory, and refuse unknown CDN references before fetching anything
    new_texts: dict[Path, str] = {}
    replaced: dict[str, list[str]] = {}
    unknown: list[str] = []
    for path in html_files:
        rel = path.relative_to(root).as_posix()
        prefix = "../" * rel.count("/")
        old = path.read_text(encoding="utf-8")
        new, remaining = rewrite_html(old, assets, prefix)
        unknown += [f"{rel}: {url}" for url in remaining]
        if new != old:
            new_texts[path] = new
            replaced[rel] = [a.cdn_url for a in assets if a.cdn_url in old]
    if unknown:
        raise SiteError(
            f"unknown off-site <script>/<link> reference(s) left after vendoring ({hint}): " + ", ".join(unknown)
        )

    # 2. fetch, verify, extract every package (even when already vendored, so the vendor folder is complete)
    for package in packages.values():
        tarball = fetch_tarball(package, cache_dir, registry)
        members = [a.path for a in assets if a.package == package.name] + list(package.extra_files)
        _extract(package, tarball, list(dict.fromkeys(members)), root / VENDOR_DIR / package.name)

    # 3. every referenced local file must now exist
    for path in html_files:
        text = new_texts[path] if path in new_texts else path.read_text(encoding="utf-8")
        for asset in assets:
            if asset.local_path in text and not (root / asset.local_path).is_file():
                raise SiteError(f"{path.name} references {asset.local_path}, which was not vendored")

    # 4. atomic replace of each rewritten html file
    for path, text in new_texts.items():
        _atomic_write_bytes(path, text.encode("utf-8"))
    return replaced


def _html_dir_from_config(config: Path) -> Path:
    """The config's `html_dir` (asv reads it relative to the working directory)."""
    try:
        from asv import util as asv_util

        data = asv_util.load_json(str(config), js_comments=True)
    except ImportError:
        data = json.loads(config.read_text(encoding="utf-8"))
    except Exception as exc:  # asv's UserError and friends
        raise SiteError(f"cannot read {config}: {exc}") from exc
    return Path(data.get("html_dir", "html"))


def publish(
    config: Path | str = "asv.conf.json",
    html_dir: Path | str | None = None,
    cache_dir: Path | str = DEFAULT_CACHE_DIR,
    registry: str = REGISTRY,
    reports_dir: Path | str | None = None,
) -> Path:
    """Run `asv publish`, vendor the site and (given `reports_dir`) add the reports; returns the html dir."""
    config = Path(config)
    if not config.is_file():
        raise SiteError(f"asv config {config} not found")
    cmd = [sys.executable, "-m", "asv", "publish", "--config", str(config)]
    if html_dir is not None:
        cmd += ["--html-dir", str(html_dir)]
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise SiteError(f"`{' '.join(cmd)}` failed with exit code {result.returncode}")
    out = Path(html_dir) if html_dir is not None else _html_dir_from_config(config)
    vendor_site(out, cache_dir, registry)
    if reports_dir is not None:
        add_reports(out, reports_dir, cache_dir, registry)
    return out


# ------------------------------------------------------------------------------------------------------------- reports

REPORTS_DIR = "reports"
NAV_LINK_ID = "marketsim-reports"
#: What `marketsim-opt report/profile/memory` write, by the file that identifies each kind of output folder.
REPORT_KINDS = (
    ("index.html", "report", "Regret against time, out-of-sample profit, and the kernel's scaling"),
    ("icicle/index.html", "profile", "cProfile icicle view"),
    ("flamegraph.html", "memory", "memray flame graph"),
)


#: The pictures of a `marketsim-opt report` folder shown inline on the reports page (each one checked to load).
REPORT_IMAGES = ("tradeoff.png", "oos-stats.png", "kernel-scaling.png", "optimizer-scaling.png")


def _report_kind(folder: Path) -> tuple[str, str, str] | None:
    return next((k for k in REPORT_KINDS if (folder / k[0]).is_file()), None)


def _reports_index(root: Path) -> str:
    """The reports page: one section per output folder, its pictures inline, its summary as text."""
    import html as html_lib

    sections = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != VENDOR_DIR):
        kind = _report_kind(folder)
        if kind is None:
            continue
        entry, label, what = kind
        name = html_lib.escape(folder.name)
        parts = [f'<section id="{name}"><h2>{name}</h2>', f'<p><a href="{name}/{entry}">{what}</a></p>']
        for image in REPORT_IMAGES:
            if (folder / image).is_file():
                parts.append(f'<p><a href="{name}/{entry}"><img src="{name}/{image}" alt="{name} {image}"></a></p>')
        summary = folder / "summary.txt"
        if summary.is_file():
            parts.append(f"<pre>{html_lib.escape(summary.read_text(encoding='utf-8'))}</pre>")
        if label == "profile" and (folder / "profile.prof").is_file():
            parts.append(f'<p><a href="{name}/profile.prof">profile.prof</a> (pstats, snakeviz, tuna)</p>')
        sections.append("\n".join(parts) + "</section>")
    if not sections:
        raise SiteError(f"{root} holds no report, profile or memory output (run `marketsim-opt report` and friends)")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>marketsim-opt reports</title>\n'
        "<style>body{font-family:sans-serif;margin:2em;max-width:1300px}img{max-width:100%}"
        "pre{background:#f6f6f6;padding:8px}</style></head>\n<body>\n"
        '<h1>marketsim-opt reports</h1>\n<p><a href="../index.html">back to the benchmark history</a></p>\n'
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def add_reports(
    html_dir: Path | str,
    reports_dir: Path | str,
    cache_dir: Path | str = DEFAULT_CACHE_DIR,
    registry: str = REGISTRY,
) -> Path:
    """Copy the output folders of `reports_dir` into `html_dir/reports/`, vendor memray's CDN assets there,
    write `reports/index.html` and link it from the site's navigation bar.  Returns the reports page.

    The new `reports/` is assembled in a temporary folder and swapped in whole.
    """
    html_dir, reports_dir = Path(html_dir), Path(reports_dir)
    index = html_dir / "index.html"
    if not index.is_file():
        raise SiteError(f"{index} does not exist (publish the site first)")
    if not reports_dir.is_dir():
        raise SiteError(f"reports folder {reports_dir} does not exist (run `marketsim-opt report` and friends)")
    tmp = Path(tempfile.mkdtemp(dir=html_dir, prefix=".reports.", suffix=".tmp"))
    try:
        for folder in sorted(p for p in reports_dir.iterdir() if p.is_dir() and _report_kind(p) is not None):
            shutil.copytree(folder, tmp / folder.name, ignore=shutil.ignore_patterns("*.bin"))
        (tmp / "index.html").write_text(_reports_index(tmp), encoding="utf-8")
        memray_pages = sorted(tmp.glob(f"*/{REPORT_KINDS[2][0]}"))
        hint = "memray's asset list changed; update REPORT_ASSETS/REPORT_PACKAGES in tools/site.py"
        vendor_tree(tmp, memray_pages, REPORT_ASSETS, REPORT_PACKAGES, hint, cache_dir, registry)
        target = html_dir / REPORTS_DIR
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    text = index.read_text(encoding="utf-8")
    if f'id="{NAV_LINK_ID}"' not in text:
        nav = '<ul class="nav navbar-nav navbar-left">'
        if nav not in text:
            raise SiteError(f"{index} has no `{nav}` to add the reports link to (asv's template changed)")
        link = (
            f'\n        <li><p class="navbar-text"><a id="{NAV_LINK_ID}" class="navbar-link" '
            f'href="{REPORTS_DIR}/index.html">Reports: profiles, memory, regret vs time</a></p></li>'
        )
        _atomic_write_bytes(index, text.replace(nav, nav + link, 1).encode("utf-8"))
    return html_dir / REPORTS_DIR / "index.html"


# ------------------------------------------------------------------------------------------------------------- serving


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Stay quiet when the browser drops a connection (it does when a page closes); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_dir(html_dir: Path | str, port: int = 0, quiet: bool = True) -> Iterator[str]:
    """Serve `html_dir` on 127.0.0.1:`port` (0: an ephemeral port) in a thread; yields the base URL."""
    handler_cls = _QuietHandler if quiet else http.server.SimpleHTTPRequestHandler
    handler = functools.partial(handler_cls, directory=str(html_dir))
    server = _Server(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------------------------- check


def _points(data: object) -> int:
    """Non-null points of an asv graph JSON: a list of [revision, value] (value a number, null or list)."""
    if not isinstance(data, list):
        return 0
    count = 0
    for point in data:
        if not isinstance(point, list) or len(point) < 2:
            continue
        value = point[1]
        if isinstance(value, list):
            count += any(v is not None for v in value)
        elif value is not None:
            count += 1
    return count


def _benchmark_graph_files(html_dir: Path, name: str) -> list[Path]:
    """The per-configuration graph JSON files of a benchmark (not the grid's graphs/summary copy)."""
    safe = re.sub('[<>:"/\\\\^|?*\x00-\x1f]', "_", name)
    graphs = html_dir / "graphs"
    return sorted(p for p in graphs.rglob(f"{safe}.json") if p.parent != graphs / "summary")


def pick_benchmark(html_dir: Path | str, benchmarks: list[str]) -> str | None:
    """The first benchmark (in index.json order) whose graph data has more than one non-null point."""
    html_dir = Path(html_dir)
    for name in benchmarks:
        for path in _benchmark_graph_files(html_dir, name):
            if _points(json.loads(path.read_text(encoding="utf-8"))) > 1:
                return name
    return None


@dataclass
class CheckReport:
    """What the browser check saw."""

    base_url: str = ""
    benchmarks: list[str] = field(default_factory=list)
    grid_names: list[str] = field(default_factory=list)
    graph_benchmark: str = ""
    graph_files: dict[str, int] = field(default_factory=dict)  # graph JSON loaded by the page -> non-null points
    plot: dict = field(default_factory=dict)
    summarylist_rows: int = 0
    reports: dict[str, str] = field(default_factory=dict)  # reports page or view -> what was seen there
    problems: list[str] = field(default_factory=list)  # console errors, page errors, failed requests
    screenshots: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


_PLOT_JS = """() => {
  const el = document.querySelector('#main-graph');
  if (!el || !window.jQuery) return null;
  const plot = jQuery(el).data('plot');
  const canvas = el.querySelector('canvas.flot-base');
  if (!plot || !canvas) return null;
  const series = plot.getData().map(s => (s.data || []).filter(p => p && p[1] !== null && p[1] !== undefined).length);
  const ctx = canvas.getContext('2d');
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0, coloured = 0;
  for (let i = 0; i < img.length; i += 4) {
    const [r, g, b, a] = [img[i], img[i + 1], img[i + 2], img[i + 3]];
    if (a === 0 || (r > 245 && g > 245 && b > 245)) continue;
    painted++;
    if (Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
  }
  const box = canvas.getBoundingClientRect();
  return {series, width: box.width, height: box.height, painted, coloured};
}"""


def _plot_condition(condition: str) -> str:
    """A JS function: the plot summary `r` of `_PLOT_JS` exists and satisfies `condition`."""
    return f"() => {{ const r = ({_PLOT_JS})(); return r !== null && ({condition}); }}"


def check_site(
    html_dir: Path | str = "html",
    benchmark: str | None = None,
    grid_screenshot: Path | str | None = "artifacts/site-grid.png",
    graph_screenshot: Path | str | None = "artifacts/site-graph.png",
    timeout_s: float = 30.0,
) -> CheckReport:
    """Run the browser check; returns the report, raises CheckFailed (a check failed) or HarnessError (cannot run)."""
    html_dir = Path(html_dir).resolve()
    index_json = html_dir / "index.json"
    if not (html_dir / "index.html").is_file() or not index_json.is_file():
        raise HarnessError(f"{html_dir} is not a published asv site (no index.html/index.json)")
    chromium = shutil.which("chromium")
    if chromium is None:
        raise HarnessError("no `chromium` on PATH (Debian: apt-get install -y chromium)")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise HarnessError(f"playwright is not installed: {exc}") from exc

    report = CheckReport()
    report.benchmarks = list(json.loads(index_json.read_text(encoding="utf-8")).get("benchmarks", {}))
    failures = report.failures
    if not report.benchmarks:
        failures.append("index.json lists no benchmarks")
    if benchmark is None:
        benchmark = pick_benchmark(html_dir, report.benchmarks)
        if benchmark is None and report.benchmarks:
            failures.append("no benchmark has graph data with more than one non-null point (needs >1 commit)")
    elif benchmark not in report.benchmarks:
        failures.append(f"benchmark {benchmark!r} is not in index.json")
        benchmark = None
    timeout_ms = timeout_s * 1000

    with serve_dir(html_dir) as base, sync_playwright() as pw:
        report.base_url = base
        origin = urllib.parse.urlsplit(base).netloc
        try:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
        except PlaywrightError as exc:
            raise HarnessError(f"cannot launch {chromium}: {str(exc).splitlines()[0]}") from exc
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def block_external(route) -> None:
                if urllib.parse.urlsplit(route.request.url).netloc != origin:
                    report.problems.append(f"request to another host: {route.request.url}")
                    route.abort()
                else:
                    route.continue_()

            context.route("**/*", block_external)

            closing: set[int] = set()  # pages being closed: their aborted in-flight requests are not problems

            def new_page(label: str):
                page = context.new_page()
                page.set_default_timeout(timeout_ms)

                def problem(text: str) -> None:
                    if id(page) not in closing:
                        report.problems.append(f"{label}: {text}")

                def on_console(msg) -> None:
                    if msg.type == "error":
                        problem(f"console error: {msg.text} ({msg.location.get('url', '')})")

                def on_response(resp) -> None:
                    if resp.status >= 400:
                        problem(f"HTTP {resp.status} for {resp.url}")

                page.on("console", on_console)

                def on_pageerror(exc) -> None:
                    frames = [ln.strip() for ln in (exc.stack or "").splitlines() if ln.strip().startswith("at ")]
                    problem(f"page error: {exc.message}" + (f" ({frames[0]})" if frames else ""))

                page.on("pageerror", on_pageerror)
                page.on("requestfailed", lambda req: problem(f"request failed: {req.url} ({req.failure})"))
                page.on("response", on_response)
                return page

            def close(page) -> None:
                closing.add(id(page))
                page.close()

            def wait(page, js: str, arg: object, what: str) -> bool:
                """Wait until `js` (a function of `arg`) is true; give up early when asv went to error.html."""
                fn = f"arg => (({js})(arg)) || location.pathname.endsWith('/error.html')"
                try:
                    page.wait_for_function(fn, arg=arg, timeout=timeout_ms)
                except PlaywrightError as exc:
                    failures.append(f"{what} (timed out after {timeout_s:g} s at {page.url}: {type(exc).__name__})")
                    return False
                if page.evaluate(f"arg => !!(({js})(arg))", arg):
                    return True
                failures.append(f"{what}: asv redirected to {page.url} (a JavaScript dependency failed to load)")
                return False

            def screenshot(page, path: Path | str | None) -> None:
                if path is None:
                    return
                path = Path(path)
                path.parent.mkdir(parents=True, exist_ok=True)
                # Playwright's full_page capture resizes the window through a zero width, which asv's resize
                # handler answers with flot's "Invalid dimensions for plot" page error. Grow the viewport to the
                # whole page instead, let asv redraw, and capture that.
                height = page.evaluate("() => document.documentElement.scrollHeight")
                viewport = page.viewport_size or {"width": 1280, "height": 900}
                if height > viewport["height"]:
                    page.set_viewport_size({"width": viewport["width"], "height": min(height, MAX_SCREENSHOT_PX)})
                    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                page.screenshot(path=str(path))
                report.screenshots.append(str(path))

            # 1. the summary grid lists every benchmark
            page = new_page("grid")
            page.goto(f"{base}/index.html#/", wait_until="load")
            grid_js = "n => document.querySelectorAll('#summarygrid-display a.benchmark-container').length >= n"
            if wait(page, grid_js, len(report.benchmarks), "summary grid did not render every benchmark"):
                # let the visible summary plots draw before the screenshot
                with contextlib.suppress(PlaywrightError):
                    page.wait_for_function(
                        "() => document.querySelector('#summarygrid-display .benchmark-plot canvas') !== null",
                        timeout=5000,
                    )
            hrefs = page.eval_on_selector_all(
                "#summarygrid-display a.benchmark-container", "els => els.map(e => e.getAttribute('href'))"
            )
            report.grid_names = [urllib.parse.unquote(h[1:]) for h in hrefs if h and h.startswith("#")]
            missing = [b for b in report.benchmarks if b not in report.grid_names]
            if missing:
                failures.append(f"summary grid is missing benchmark(s): {', '.join(missing)}")
            has_reports = (html_dir / REPORTS_DIR / "index.html").is_file()
            if has_reports and page.query_selector(f"a#{NAV_LINK_ID}[href='{REPORTS_DIR}/index.html']") is None:
                failures.append(f"the site's navigation bar has no link to {REPORTS_DIR}/index.html")
            screenshot(page, grid_screenshot)
            close(page)

            # 2. a benchmark graph page draws a plot with more than one point
            if benchmark is not None:
                report.graph_benchmark = benchmark
                page = new_page("graph")
                loaded: list[str] = []

                def on_response(resp) -> None:
                    path = urllib.parse.unquote(urllib.parse.urlsplit(resp.url).path).lstrip("/")
                    if path.startswith("graphs/") and not path.startswith("graphs/summary/") and resp.ok:
                        loaded.append(path)

                page.on("response", on_response)
                page.goto(f"{base}/index.html#{urllib.parse.quote(benchmark, safe='')}", wait_until="load")
                plot = None
                if wait(
                    page, _plot_condition("r.series.length > 0"), None, f"graph page of {benchmark} drew no flot plot"
                ):
                    # asv re-plots as each graph file arrives: give it a moment to reach the full picture
                    with contextlib.suppress(PlaywrightError):
                        page.wait_for_function(
                            _plot_condition("Math.max(...r.series) > 1 && r.coloured >= 20"), timeout=5000
                        )
                    plot = page.evaluate(_PLOT_JS)
                for path in loaded:
                    local = html_dir / path
                    report.graph_files[path] = (
                        _points(json.loads(local.read_text(encoding="utf-8"))) if local.is_file() else -1
                    )
                if not loaded:
                    failures.append(f"graph page of {benchmark} loaded no graphs/... JSON")
                elif max(report.graph_files.values()) <= 1:
                    failures.append(f"graph data of {benchmark} has <= 1 non-null point: {report.graph_files}")
                if plot is not None:
                    report.plot = plot
                    if plot["width"] < 200 or plot["height"] < 100:
                        failures.append(f"graph canvas of {benchmark} is too small: {plot['width']}x{plot['height']}")
                    if max(plot["series"], default=0) <= 1:
                        failures.append(f"graph of {benchmark} plots <= 1 point per series: {plot['series']}")
                    if plot["coloured"] < 20:
                        failures.append(
                            f"graph canvas of {benchmark} shows no plotted line ({plot['coloured']} coloured pixels)"
                        )
                screenshot(page, graph_screenshot)
                close(page)

            # 3. the benchmark list (stupidtable) renders; and no page had an error
            page = new_page("summarylist")
            page.goto(f"{base}/index.html#/summarylist", wait_until="load")
            if wait(
                page,
                "() => document.querySelectorAll('#summarylist-body table tbody tr').length > 0",
                None,
                "benchmark list (#/summarylist) rendered no table rows",
            ):
                report.summarylist_rows = page.eval_on_selector_all("#summarylist-body table tbody tr", "e => e.length")
            close(page)

            # 4. the reports page: its pictures load, and each view it links to draws its chart
            if has_reports:
                _check_reports(new_page, close, wait, base, report)
            context.close()
        finally:
            browser.close()

    failures.extend(dict.fromkeys(report.problems))  # deduplicated, in order
    if failures:
        raise CheckFailed(failures)
    return report


_IMAGES_JS = """() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"""
#: tuna's icicle and memray's flame graph both draw their boxes as SVG rects once their scripts ran.
_CHART_JS = "n => document.querySelectorAll('svg rect').length >= n"
MIN_CHART_RECTS = 3


def _check_reports(new_page, close, wait, base: str, report: CheckReport) -> None:
    """Open reports/index.html and every view it links to; record what each showed, fail what did not render."""
    failures = report.failures
    page = new_page("reports")
    page.goto(f"{base}/{REPORTS_DIR}/index.html", wait_until="load")
    images = page.evaluate(_IMAGES_JS)
    broken = [src for src, ok in images if not ok]
    if broken:
        failures.append(f"reports page: image(s) did not load: {', '.join(broken)}")
    links = page.eval_on_selector_all("section a[href$='.html']", "els => els.map(e => e.getAttribute('href'))")
    report.reports[f"{REPORTS_DIR}/index.html"] = f"{len(images) - len(broken)}/{len(images)} images loaded"
    if not links:
        failures.append("reports page links to no report, profile or memory view")
    close(page)
    for href in dict.fromkeys(links):
        view = new_page(href)
        view.goto(f"{base}/{REPORTS_DIR}/{href}", wait_until="load")
        if href.endswith("/index.html") and not href.endswith("icicle/index.html"):  # a report page: its pictures
            images = view.evaluate(_IMAGES_JS)
            broken = [src for src, ok in images if not ok]
            if not images or broken:
                failures.append(f"{href}: image(s) did not load: {', '.join(broken) or 'none on the page'}")
            report.reports[href] = f"{len(images) - len(broken)}/{len(images)} images loaded"
        elif wait(view, _CHART_JS, MIN_CHART_RECTS, f"{href} drew no chart (fewer than {MIN_CHART_RECTS} SVG rects)"):
            report.reports[href] = f"{view.evaluate('() => document.querySelectorAll(`svg rect`).length')} SVG rects"
        close(view)


# ----------------------------------------------------------------------------------------------------------------- CLI


def _cmd_publish(args: argparse.Namespace) -> int:
    out = publish(args.config, args.html_dir, args.cache_dir, reports_dir=args.reports)
    print(f"published and vendored {out}" + (f", with the reports of {args.reports}" if args.reports else ""))
    return 0


def _cmd_vendor(args: argparse.Namespace) -> int:
    replaced = vendor_site(args.html_dir, args.cache_dir)
    for name, urls in replaced.items():
        print(f"{name}: {len(urls)} CDN reference(s) -> {VENDOR_DIR}/")
    print(f"vendored {len(PACKAGES)} npm packages into {Path(args.html_dir) / VENDOR_DIR}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    shots = Path(args.screenshot_dir)
    try:
        report = check_site(
            args.html_dir, args.benchmark, shots / "site-grid.png", shots / "site-graph.png", args.timeout
        )
    except HarnessError as exc:
        print(f"site check could not run: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"site check FAILED ({len(exc.failures)} problem(s)):", file=sys.stderr)
        for failure in exc.failures[:MAX_PRINTED_FAILURES]:
            print(f"  - {failure}", file=sys.stderr)
        if len(exc.failures) > MAX_PRINTED_FAILURES:
            print(f"  ... and {len(exc.failures) - MAX_PRINTED_FAILURES} more", file=sys.stderr)
        return 1
    print(
        f"site check passed: grid lists {len(report.grid_names)}/{len(report.benchmarks)} benchmarks; "
        f"{report.graph_benchmark} plots {report.plot.get('series')} point(s) per series "
        f"(graph data {report.graph_files}); benchmark list has {report.summarylist_rows} rows; "
        + (f"reports: {report.reports}; " if report.reports else "")
        + f"screenshots: {', '.join(report.screenshots)}"
    )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    if not (Path(args.html_dir) / "index.html").is_file():
        print(f"error: {args.html_dir}/index.html does not exist", file=sys.stderr)
        return 2
    with serve_dir(args.html_dir, args.port, quiet=False) as base:
        print(f"serving {args.html_dir} at {base}/ (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the CLI."""
    parser = argparse.ArgumentParser(
        prog="tools/site.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("publish", help="asv publish, then vendor the CDN assets")
    p.add_argument("--html-dir", default=None, help="output folder (default: html_dir of the asv config)")
    p.add_argument("--config", default="asv.conf.json", help="asv config file (default: asv.conf.json)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="npm tarball cache (default: %(default)s)")
    p.add_argument("--reports", default=None, help="folder of marketsim-opt report/profile/memory outputs to include")
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("vendor", help="vendor the CDN assets into an already published site")
    p.add_argument("html_dir", help="the published site folder")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="npm tarball cache (default: %(default)s)")
    p.set_defaults(func=_cmd_vendor)

    p = sub.add_parser("check", help="open the site in headless chromium and check it")
    p.add_argument("--html-dir", default="html", help="the published site folder (default: html)")
    p.add_argument(
        "--benchmark", default=None, help="benchmark whose graph page to check (default: first with >1 point)"
    )
    p.add_argument("--screenshot-dir", default="artifacts", help="where site-grid.png/site-graph.png go")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each page (default: 30)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("serve", help="serve the site on 127.0.0.1 until Ctrl-C")
    p.add_argument("--html-dir", default="html", help="the published site folder (default: html)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
