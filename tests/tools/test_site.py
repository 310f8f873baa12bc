"""Tests for tools/site.py: the npm lockfile's pins, vendoring asv's and memray's CDN assets, the reports page, and
`publish` (the browser check of the published site is test_site_browser.py).

`npm ci` installs tools/site/node_modules once per session (npm's cache makes reruns offline); the failure paths
need no network.  The tests skip when npm, asv or the report extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_site():
    """Import tools/site.py (tools/ is not a package) under a name that does not shadow the stdlib `site`."""
    if "tools_site" not in sys.modules:
        spec = importlib.util.spec_from_file_location("tools_site", REPO_ROOT / "tools" / "site.py")
        sys.modules[spec.name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["tools_site"]


site = _load_site()
LOCK = json.loads((site.SITE / "package-lock.json").read_text(encoding="utf-8"))["packages"]
#: cdnjs's stupidtable 1.0.1 is npm's stupid-table-plugin, whose registry serves only 1.1.3 (tools/site.py).
RENAMED_VERSIONS = {("stupid-table-plugin", "1.0.1"): "1.1.3"}


def _asv_www() -> Path:
    asv = pytest.importorskip("asv", reason="asv is not installed (the bench extra)")
    return Path(asv.__file__).parent / "www"


@pytest.fixture
def template_site(tmp_path: Path) -> Path:
    """A copy of asv's unpublished www folder (its index.html loads the CDN assets)."""
    return Path(shutil.copytree(_asv_www(), tmp_path / "html"))


@pytest.mark.parametrize("url,path", [*site.ASSETS.items(), *site.REPORT_ASSETS.items()])
def test_lockfile_pins_the_version_each_cdn_url_names(url: str, path: str) -> None:
    """Each vendored file comes from the npm package version its CDN URL names, pinned with a sha512 integrity."""
    package = path.split("/")[0]
    entry = LOCK[f"node_modules/{package}"]
    version = re.search(r"[@/-](\d+\.\d+\.\d+)[/.]", url).group(1)
    name = entry.get("name", package)  # an alias (bootstrap-4, jquery-3.6) records the real package name
    assert entry["version"] == RENAMED_VERSIONS.get((name, version), version), url
    assert entry["integrity"].startswith("sha512-")


def test_vendor_makes_asv_template_self_contained(template_site: Path, node_modules: Path) -> None:
    """Every CDN reference of asv's index.html points at a vendored copy; the CDN attributes go; error.html stays."""
    before = (template_site / "index.html").read_text(encoding="utf-8")
    error_before = (template_site / "error.html").read_bytes()
    site.vendor(template_site, sorted(template_site.glob("*.html")), site.ASSETS, site.EXTRAS, node_modules)
    text = (template_site / "index.html").read_text(encoding="utf-8")
    assert site.REMOTE_RE.findall(text) == []
    for url, path in site.ASSETS.items():
        assert url not in text and f'"vendor/{path}"' in text
        assert (template_site / "vendor" / path).stat().st_size > 1000, path
    for extra in site.EXTRAS:
        assert (template_site / "vendor" / extra).is_file(), extra
    assert not re.search(r"\b(integrity|crossorigin|referrerpolicy)=", text)
    assert text.count('onerror="js_load_failure()"') == before.count('onerror="js_load_failure()"')
    assert (template_site / "error.html").read_bytes() == error_before
    assert not list(template_site.glob(".*.tmp"))


def test_vendor_refuses_an_unknown_remote_reference_and_writes_nothing(tmp_path: Path) -> None:
    """A script or stylesheet still loading from another host fails, naming file and URL; nothing is written."""
    index = tmp_path / "index.html"
    original = (
        f'<script src="{next(iter(site.ASSETS))}"></script>\n<link rel="stylesheet" href="//cdn.example.com/n.css">'
    )
    index.write_text(original, encoding="utf-8")
    with pytest.raises(site.SiteError, match=r"index\.html: loads //cdn\.example\.com/n\.css from another host"):
        site.vendor(tmp_path, [index], site.ASSETS, site.EXTRAS, tmp_path / "node_modules")
    assert index.read_text(encoding="utf-8") == original and sorted(tmp_path.iterdir()) == [index]


def test_vendor_names_a_file_missing_from_node_modules(template_site: Path, tmp_path: Path) -> None:
    before = (template_site / "index.html").read_bytes()
    with pytest.raises(site.SiteError, match=r"not in .*node_modules: jquery/dist/jquery\.min\.js, "):
        site.vendor(template_site, [template_site / "index.html"], site.ASSETS, site.EXTRAS, tmp_path / "node_modules")
    assert (template_site / "index.html").read_bytes() == before and not (template_site / "vendor").exists()


def test_npm_ci_failure_is_a_clear_error(tmp_path: Path) -> None:
    """`npm ci` without a lockfile (or with a tarball failing its sha512) is a SiteError quoting npm."""
    if shutil.which("npm") is None:
        pytest.skip("no `npm` on PATH")
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"blueimp-md5": "2.19.0"}}')
    with pytest.raises(site.SiteError, match=r"npm ci --ignore-scripts .* failed \(\d+\): .*package-lock"):
        site.npm_install(tmp_path)
    assert not (tmp_path / "node_modules").exists()


def test_tampered_lockfile_integrity_fails(tmp_path: Path, node_modules: Path) -> None:
    """A lockfile whose sha512 does not match the registry's tarball stops `npm ci` (EINTEGRITY)."""
    shutil.copy(site.SITE / "package.json", tmp_path)
    lock = json.loads((site.SITE / "package-lock.json").read_text(encoding="utf-8"))
    lock["packages"]["node_modules/blueimp-md5"]["integrity"] = "sha512-" + "A" * 86 + "=="
    (tmp_path / "package-lock.json").write_text(json.dumps(lock), encoding="utf-8")
    with pytest.raises(site.SiteError, match="EINTEGRITY"):
        site.npm_install(tmp_path)


def test_publish_without_config_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert site.main(["publish", "--config", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: asv config") and "\n" not in err


def test_publish_never_replaces_a_folder_that_is_no_asv_site(tmp_path: Path) -> None:
    """An --html-dir holding something else is refused, and left as it was."""
    (tmp_path / "asv.conf.json").write_text("{}", encoding="utf-8")
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(site.SiteError, match=r"html exists and is not an asv site"):
        site.publish(tmp_path / "asv.conf.json", tmp_path / "html")
    assert (
        sorted(p.name for p in tmp_path.iterdir()) == ["asv.conf.json", "html"]
        and (tmp_path / "html/notes.txt").exists()
    )


def test_add_reports_vendors_memray_and_links_the_nav(
    template_site: Path, node_modules: Path, sample_reports: Path
) -> None:
    """The reports land in reports/, memray's page loads only vendored scripts, asv's nav links the page once."""
    site.vendor(template_site, [template_site / "index.html"], site.ASSETS, site.EXTRAS, node_modules)
    page = site.add_reports(template_site, sample_reports, node_modules)
    site.add_reports(template_site, sample_reports, node_modules)  # again: replaced, not duplicated
    assert page == template_site / "reports" / "index.html"
    nav = (template_site / "index.html").read_text(encoding="utf-8")
    assert nav.count(f'id="{site.NAV_LINK_ID}"') == 1 and 'href="reports/index.html"' in nav
    text = page.read_text(encoding="utf-8")
    for href in (
        "report/index.html",
        "profile-profile-direct/icicle/index.html",
        "memory-profile-grid/flamegraph.html",
    ):
        assert f'href="{href}"' in text, href
    for image in site.REPORT_IMAGES:
        assert f'src="report/{image}"' in text, image
    assert "optimizer and glue" in text and "peak heap" in text and 'href="profile-profile-direct/profile.prof"' in text
    flame = (template_site / "reports" / "memory-profile-grid" / "flamegraph.html").read_text(encoding="utf-8")
    assert site.REMOTE_RE.findall(flame) == []
    for path in site.REPORT_ASSETS.values():
        assert f'"../vendor/{path}"' in flame, path
        assert (template_site / "reports" / "vendor" / path).stat().st_size > 1000, path
    assert not list((template_site / "reports").rglob("*.bin"))  # memray's capture stays out of the site
    assert not list(template_site.glob(".reports.*"))


def test_reports_page_escapes_folder_names(template_site: Path, node_modules: Path, tmp_path: Path) -> None:
    """The reports page is rendered with autoescape: a folder name cannot inject markup."""
    folder = tmp_path / "reports" / "<b>x&y"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<p>report</p>", encoding="utf-8")
    (folder / "summary.txt").write_text("a < b", encoding="utf-8")
    text = site.add_reports(template_site, tmp_path / "reports", node_modules).read_text(encoding="utf-8")
    assert "<b>x" not in text and "&lt;b&gt;x&amp;y" in text and "a &lt; b" in text


def test_add_reports_refuses_an_empty_or_missing_folder(template_site: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(site.SiteError, match="holds no report, profile or memory output"):
        site.add_reports(template_site, tmp_path / "empty", tmp_path / "node_modules")
    with pytest.raises(site.SiteError, match="does not exist"):
        site.add_reports(template_site, tmp_path / "missing", tmp_path / "node_modules")
    assert not (template_site / "reports").exists() and not list(template_site.glob(".reports.*"))


@pytest.mark.slow
def test_published_site_is_self_contained(published_site: Path) -> None:
    """`publish` leaves no off-site reference in any page, and the temporary folders are gone."""
    for page in published_site.rglob("*.html"):
        assert site.REMOTE_RE.findall(page.read_text(encoding="utf-8")) == [], page
    benchmarks = json.loads((published_site / "index.json").read_text(encoding="utf-8"))["benchmarks"]
    assert sorted(benchmarks) == ["bench.time_sum", "bench.track_value"]
    assert (published_site / "reports" / "index.html").is_file()
    assert [p.name for p in published_site.parent.iterdir() if p.name.startswith(".html")] == []
