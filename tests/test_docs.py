"""The documentation holds together: every relative link in README.md and docs/*.md points
at a file (and heading) that exists, and the README's set-up commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _text(page: Path) -> str:
    """The page without its fenced code blocks (their brackets are code, not links)."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, and a
    -1, -2, ... suffix on repeats."""
    seen: dict[str, int] = {}
    out = set()
    for line in _text(page).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(page: Path) -> list[str]:
    return [t for t in LINK.findall(_text(page)) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_link_checker_sees_links():
    assert len(_links(ROOT / "README.md")) >= 10
    assert "ml-rq-recipes-3d-that-emerges-from-2d-issue-13" in _anchors(ROOT / "docs" / "results.md")


def _ci_commands() -> list[str]:
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _readme_blocks() -> list[str]:
    return [b.strip("`\n").partition("\n")[2].strip()
            for b in FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))]


def test_readme_test_command_is_what_ci_runs():
    ci_tests = [c for c in _ci_commands() if "pytest" in c]
    assert ci_tests == ["python -m pytest"]
    readme_tests = [b for b in _readme_blocks() if "pytest" in b]
    assert readme_tests == ci_tests


def test_readme_install_pins_the_torch_ci_installs():
    pins = {m for c in _ci_commands() for m in re.findall(r"torch==[\w.+]+", c)}
    install = [b for b in _readme_blocks() if "pip install" in b]
    assert len(install) == 1 and pins
    assert set(re.findall(r"torch==[\w.+]+", install[0])) == pins
    assert 'pip install -e ".[test]"' in install[0] and "free3d generate" in install[0]
