"""One template for every method chapter (issue 13, §5); Parts III and IV end with references.

Every chapter in ``chapters/part2-attribution`` has these level-2 headings in this order, each
once. A heading matches when its text is the name, or the name followed by ``:`` and more (``## A
worked example: boxer or tiger cat?``). Other level-2 headings may sit between them, never before
the first or after the last. Lines inside fenced code blocks (``# comments`` in code cells) are
not headings.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = [
    "Intuition",
    "The algorithm",
    "The package code",
    "A worked example",
    "A ground-truth example",
    "Sanity check",
    "Failure modes",
    "Strengths",
    "Limitations",
    "Software",
    "Exercises",
    "References",
]
METHOD_CHAPTERS = sorted((ROOT / "chapters" / "part2-attribution").glob("[0-9][0-9]-*.md"))
# Rewritten in parallel by the evaluation helpers (issue 13 leaves them to them): their References
# sections land with their rewrite. Remove a name here once its chapter has one.
PENDING: set[str] = set()  # chapters whose rewrite has not landed yet
OTHER_CHAPTERS = sorted([*(ROOT / "chapters" / "part3-inside").glob("[0-9][0-9]-*.md"),
                         *(ROOT / "chapters" / "part4-evaluation").glob("[0-9][0-9]-*.md")])


def headings(text: str, level: int = 2) -> list[str]:
    """The level-``level`` ATX headings of a MyST page, skipping fenced code blocks."""
    found, fence = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,}|:{3,})", stripped)
        if marker:
            token = marker.group(1)
            if fence is None:
                fence = token
            elif token[0] == fence[0] and len(token) >= len(fence) and not stripped[len(token):].strip():
                fence = None  # a bare run of the opening character closes the block
            continue
        if fence is None and re.match(r"#{%d}\s" % level, line):
            found.append(line[level + 1:].strip())
    return found


def template_name(heading: str) -> str | None:
    for name in TEMPLATE:
        if heading == name or heading.startswith(name + ":"):
            return name
    return None


def test_the_heading_parser_skips_code_and_reads_suffixes() -> None:
    page = "# T\n\n## Intuition\n\n```{code-cell} ipython3\n## not a heading\n```\n\n## A worked example: x\n"
    assert headings(page) == ["Intuition", "A worked example: x"]
    assert template_name("A worked example: boxer or tiger cat?") == "A worked example"
    assert template_name("A worked exampleX") is None


@pytest.mark.parametrize("path", METHOD_CHAPTERS, ids=lambda p: p.stem)
def test_every_method_chapter_follows_the_template(path: Path) -> None:
    found = headings(path.read_text())
    named = [template_name(h) for h in found]
    sequence = [n for n in named if n is not None]
    assert sequence == TEMPLATE, f"{path.name}: template headings {sequence}, expected {TEMPLATE}"
    assert named[0] == TEMPLATE[0], f"{path.name}: '## {found[0]}' comes before '## Intuition'"
    assert named[-1] == TEMPLATE[-1], f"{path.name}: '## {found[-1]}' comes after '## References'"


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(reason="rewritten elsewhere", strict=False))
    if p.stem in PENDING else p for p in OTHER_CHAPTERS], ids=lambda p: p.stem)
def test_parts_three_and_four_end_with_references(path: Path) -> None:
    found = headings(path.read_text())
    assert found and found[-1] == "References", f"{path.name}: last section is {found[-1:]}, not References"
