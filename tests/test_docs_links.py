"""Every relative link in the README and docs/ points at a file that exists and, when it
names an anchor, at a heading of that file (as GitHub slugs headings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md", ROOT / "email_templates" / "README.md", *(ROOT / "docs").rglob("*.md")]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_slug_matches_githubs():
    assert slug("Stripe's cancellation reasons") == "stripes-cancellation-reasons"
    assert slug("Zapier, Make, n8n or your own code") == "zapier-make-n8n-or-your-own-code"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor}")
    assert broken == []


def test_links_are_found():
    # The check above is only worth something if it sees the README's links.
    assert "docs/configuration.md" in links(ROOT / "README.md")


def test_docs_paths_named_in_the_code_exist():
    """Pages and messages point owners at docs/ files by path: each must exist."""
    root = Path(__file__).resolve().parent.parent
    named = set()
    for folder in ("hooks", "worker", "devstack"):
        for path in (root / folder).rglob("*.*"):
            if path.suffix in (".py", ".html"):
                named |= set(re.findall(r"\bdocs/[\w./-]+\.(?:md|yaml|php)", path.read_text()))
    assert named and [n for n in sorted(named) if not (root / n).is_file()] == []
