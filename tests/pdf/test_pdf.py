"""The printed book, read back from the PDF that xelatex typeset (run by `make pdf`; CI does).

Every chapter of the table of contents must be in the PDF, as a numbered chapter in the PDF's
outline (the appendices unnumbered), with its title printed; every figure of the sources must be
printed as a numbered figure with its image; no reference or citation may be left unresolved
("??" in the text, or LaTeX's warnings in the log); no character may be missing from the fonts;
the mathematics is set in a math font; the bibliography lists every work the chapters cite; every
chapter ends with its citation block; no output prints as its Python placeholder; and the HTML
links to the PDF.
"""
from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest
import yaml

pypdf = pytest.importorskip("pypdf")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NAME = Path(CONFIG["latex"]["latex_documents"]["targetname"]).with_suffix(".pdf").name
PDF = ROOT / "_build" / "latex" / NAME
LOG = PDF.with_suffix(".log")
HTML = ROOT / "_build" / "html"
CITE_SKIP = set(CONFIG["sphinx"]["config"].get("xaisurvey_cite_skip", []))

pytestmark = pytest.mark.pdf


def toc() -> tuple[str, list[tuple[str, bool]]]:
    """The root document and every chapter of `_toc.yml` with whether its part is numbered."""
    data = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = []
    for part in data.get("parts", []):
        for entry in part.get("chapters", []):
            chapters.append((entry["file"], bool(part.get("numbered", False))))
    return data["root"], chapters


def source(doc: str) -> str:
    return (ROOT / f"{doc}.md").read_text()


def title(doc: str) -> str:
    return re.search(r"^# (.+)$", source(doc), re.M).group(1).strip()


def squash(text: str) -> str:
    """Text compared without layout: ligatures unfolded; no spaces, hyphens or quotes."""
    text = unicodedata.normalize("NFKC", text)
    # pypdf loses most spaces of xelatex's text, TeX hyphenates and curls quotes (BibTeX's ``x''):
    # compare without any of them
    return re.sub(r"[\s\-\u2010\u2011\u2013\u2014'\"`\u2018\u2019\u201c\u201d]+", "", text).lower()


@cache
def reader() -> pypdf.PdfReader:
    if not PDF.exists():
        pytest.fail(f"{PDF.relative_to(ROOT)} is missing: run `make pdf`")
    return pypdf.PdfReader(PDF)


@cache
def pages() -> tuple[str, ...]:
    return tuple(page.extract_text() or "" for page in reader().pages)


@cache
def full_text() -> str:
    return "\n".join(pages())


def outline() -> list[str]:
    """The titles of the PDF's bookmarks, depth first."""
    titles: list[str] = []

    def walk(items: list) -> None:  # type: ignore[type-arg]
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                titles.append(" ".join(str(item.title).split()))

    walk(reader().outline)
    return titles


def figure_directives(doc: str) -> int:
    """Figures a page declares: `{figure}` and `{glue:figure}` directives with a caption."""
    count = 0
    for match in re.finditer(r"^(`{3,}|:{3,})\{(?:glue:)?figure\}[^\n]*\n(.*?)^\1\s*$", source(doc), re.M | re.S):
        body = [line for line in match.group(2).splitlines() if line.strip() and not line.startswith(":")]
        count += bool(body)  # a caption makes a numbered figure
    return count


def test_the_pdf_is_a_book() -> None:
    root, chapters = toc()
    assert len(reader().pages) >= 4 * len(chapters), f"{len(reader().pages)} pages for {len(chapters)} chapters"
    assert reader().metadata.title and squash(CONFIG["title"]) in squash(reader().metadata.title)


def test_every_chapter_is_a_chapter_of_the_outline_numbered_as_its_part() -> None:
    root, chapters = toc()
    entries = outline()
    number = 0
    for doc, numbered in chapters:
        name = " ".join(title(doc).split())
        matches = [entry for entry in entries if entry == name or re.fullmatch(rf"[\dA-Z]+(\.\d+)*\.? {re.escape(name)}", entry)]
        assert matches, f"{doc}: {name!r} is not in the PDF's outline"
        if numbered:
            number += 1
            assert f"{number} {name}" in matches, f"{doc}: expected chapter {number}, outline has {matches}"


def test_every_chapter_title_is_printed() -> None:
    root, chapters = toc()
    text = squash(full_text())
    missing = [title(doc) for doc, _ in chapters if squash(title(doc)) not in text]
    assert missing == []


def test_every_figure_is_printed_numbered_with_its_image() -> None:
    root, chapters = toc()
    expected = sum(figure_directives(doc) for doc in [root] + [doc for doc, _ in chapters])
    labels = set(re.findall(r"Fig\.\s*(\d+(?:\.\d+)*)\s*:", full_text()))
    assert len(labels) == expected, f"{len(labels)} numbered figure captions in the PDF, {expected} in the sources"
    images = sum(len(page.images) for page in reader().pages)
    assert images >= expected, f"{images} images for {expected} figures"


def test_no_unresolved_reference_or_missing_character() -> None:
    unresolved = [i + 1 for i, text in enumerate(pages()) if "??" in text]
    assert unresolved == [], f"'??' (an unresolved reference) on pages {unresolved}"
    log = LOG.read_text(errors="replace")
    warnings = re.findall(r"LaTeX Warning: (?:Reference|Citation|Hyper reference) .*? undefined", log)
    assert warnings == []
    missing = sorted(set(re.findall(r"Missing character: There is no (.+?) in font", log)))
    assert missing == [], f"characters the fonts lack (printed as nothing): {missing}"


def test_mathematics_is_typeset_in_a_math_font() -> None:
    fonts: set[str] = set()
    for page in reader().pages:
        resources = page.get("/Resources") or {}
        for font in (resources.get("/Font") or {}).values():
            fonts.add(str(font.get_object().get("/BaseFont")))
    assert any("LatinModernMath" in font for font in fonts), sorted(fonts)
    assert "$" not in "".join(
        line for line in full_text().splitlines() if "\\frac" in line or "\\sum" in line
    ), "TeX source printed as text"


def test_the_bibliography_lists_every_cited_work() -> None:
    root, chapters = toc()
    keys = set()
    for doc in [root] + [doc for doc, _ in chapters]:
        for group in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", source(doc)):
            keys.update(key.strip() for key in group.split(","))
    bib = (ROOT / "references.bib").read_text()
    text = squash(full_text())
    missing = []
    for key in sorted(keys):
        entry = re.search(r"^@\w+\{" + re.escape(key) + r",(.*?)^\}", bib, re.M | re.S).group(1)
        field = re.search(r"^\s*title\s*=\s*[{\"](.+?)[}\"],?\s*$", entry, re.M).group(1)
        if squash(re.sub(r"[{}\\]", "", field)) not in text:
            missing.append(key)
    assert keys and missing == [], f"cited works whose titles are not printed: {missing}"


def test_every_chapter_ends_with_its_citation_block() -> None:
    root, chapters = toc()
    expected = [doc for doc, _ in chapters if doc not in CITE_SKIP]
    text = full_text()
    assert text.count("Cite this book") == 1
    assert text.count("Cite this chapter") == len(expected)
    assert len(re.findall(r"@incollection\{xaisurvey-", text)) == len(expected)


def test_no_output_prints_as_its_python_placeholder() -> None:
    text = full_text()
    for placeholder in ("<IPython.core.display", "<Figure size", "<matplotlib."):
        assert placeholder not in text
    explorer = next(doc for doc, _ in toc()[1] if doc.endswith("/explorer"))
    assert squash(f"/{explorer}.html") in squash(text), "the explorer points to its online page"


def test_the_html_links_to_the_pdf() -> None:
    copy = HTML / NAME
    assert copy.exists() and copy.read_bytes() == PDF.read_bytes(), f"_build/html/{NAME} is not this PDF"
    root, chapters = toc()
    for doc in [root] + [doc for doc, _ in chapters]:
        page = HTML / f"{doc}.html"
        hrefs = re.findall(r'href="([^"]*' + re.escape(NAME) + r')"', page.read_text())
        assert hrefs, f"{doc}.html has no link to {NAME}"
        assert all((page.parent / href).resolve() == copy.resolve() for href in hrefs), hrefs
