"""The repository stands alone: its markdown links point at files inside it, and `docs/` is indexed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: `[text](target)` and `![alt](target)`, the target up to a space or `)`.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def tracked_markdown() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (the tracked files are what a clone has)")
    return [ROOT / line for line in out.stdout.splitlines()]


def links(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)  # code blocks: not links
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(text)]


def test_markdown_links_stay_inside_the_repository():
    bad = []
    for path in tracked_markdown():
        for line, target in links(path):
            where = f"{path.relative_to(ROOT)}:{line}: {target}"
            if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):
                bad.append(f"{where} (a link out of the repository)")
                continue
            file = target.split("#", 1)[0]
            if not file:
                continue  # an anchor on the same page
            resolved = (path.parent / file).resolve()
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                bad.append(f"{where} (no such file)")
    assert not bad, "\n".join(bad)


def test_no_document_sends_readers_to_the_design_folder():
    """The design notes beside the checkout are not part of a clone; `docs/` says it in the project's words."""
    offenders = [str(p.relative_to(ROOT)) for p in tracked_markdown() if "shared/design" in p.read_text()]
    assert offenders == []


def test_docs_index_lists_every_page():
    index = (ROOT / "docs" / "README.md").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name != "README.md")
    assert pages and all(f"]({name})" in index for name in pages), pages


#: A generated file shown in a document: `<!-- from PATH -->`, the file's text, `<!-- end PATH -->`.
GENERATED = re.compile(r"<!-- from (\S+) -->\n(.*?)<!-- end \1 -->", flags=re.S)


def test_generated_tables_match_the_files_they_name():
    """Every figure table a document shows between `from`/`end` markers is the named file's text, as the command
    that file names (in its `Measured by` line, with the machine and date) wrote it: nothing hand-edited."""
    shown = []
    for path in tracked_markdown():
        for name, block in GENERATED.findall(path.read_text(encoding="utf-8")):
            source = ROOT / name
            assert source.is_file(), f"{path.relative_to(ROOT)} shows {name}, which does not exist"
            assert block == source.read_text(encoding="utf-8"), f"{path.relative_to(ROOT)}: {name} differs"
            assert re.search(r"^Measured by `marketsim-opt .*UTC\.$", block, flags=re.M), f"{name}: no provenance"
            shown.append(name)
    assert "docs/figures/targets/targets.md" in shown
