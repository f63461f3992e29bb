"""Every relative link and ``#anchor`` in README.md, CHANGELOG.md and docs/*.md resolves: the
file exists, and the anchor is one GitHub generates for a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"(`+).+?\1")


def prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (a heading or link inside one is text)."""
    lines, fence = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        marker = re.match(r"\s*(```+|~~~+)", line)
        if marker and (not fence or marker.group(1).startswith(fence)):
            fence = "" if fence else marker.group(1)
            continue
        if not fence:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (code, emphasis and link markup dropped),
    lower-cased, punctuation but ``-`` and ``_`` removed, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(path):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    targets = []
    for line in prose(path):
        targets += LINK.findall(INLINE_CODE.sub("", line))
    return targets


def broken(path: Path) -> list[str]:
    problems = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {file_part or path.name}")
    return problems


def test_github_anchors_are_computed_as_github_does():
    assert slug("Message (claimed-jobs queue)") == "message-claimed-jobs-queue"
    assert slug("`rerun JOB_ID [--company COMPANY_ID]`") == "rerun-job_id---company-company_id"
    assert slug("Re-running one job") == "re-running-one-job"


def test_the_docs_exist():
    names = {path.relative_to(ROOT).as_posix() for path in DOCS}
    assert {"README.md", "CHANGELOG.md", "docs/contracts.md", "docs/operations.md"} <= names


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(path: Path):
    assert links(path) or path.name != "README.md", "the README links to the docs"
    assert not broken(path), "\n".join(broken(path))


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_machine_paths(path: Path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(?<![\w.])/(?:work|home|Users|tmp)/", text), "a path of one machine"
