"""Sphinx extension: a generated "Cite this chapter" block at the end of every chapter.

The block carries the package version, so a citation names the exact edition whose numbers the
reader saw. Pages listed in ``xaisurvey_cite_skip`` (the bibliography, say) get no block.
"""
from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx

BOOK_TITLE = "Explaining Convolutional Neural Networks: An Executable Survey"
AUTHORS = "The xaisurvey authors"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("xaisurvey")
    except Exception:  # the package is not installed: say so rather than guess
        return "unknown"


def citation_for(title: str, docname: str, *, year: str, version: str, base_url: str) -> tuple[str, str]:
    """The plain-text citation and the BibTeX entry of one chapter."""
    url = f"{base_url.rstrip('/')}/{docname}.html" if base_url else f"{docname}.html"
    key = "xaisurvey-" + re.sub(r"[^a-z0-9]+", "-", docname.split("/")[-1].lower()).strip("-")
    text = f"{AUTHORS} ({year}). “{title}”. In {BOOK_TITLE}, version {version}. {url}"
    bibtex = (
        f"@incollection{{{key},\n"
        f"  title     = {{{title}}},\n"
        f"  booktitle = {{{BOOK_TITLE}}},\n"
        f"  author    = {{{{{AUTHORS}}}}},\n"
        f"  year      = {{{year}}},\n"
        f"  note      = {{Version {version}}},\n"
        f"  url       = {{{url}}}\n"
        f"}}"
    )
    return text, bibtex


def book_citation(*, year: str, version: str, base_url: str) -> tuple[str, str]:
    """The plain-text citation and the BibTeX entry of the whole book."""
    text = f"{AUTHORS} ({year}). {BOOK_TITLE}, version {version}. {base_url}"
    bibtex = (
        f"@book{{xaisurvey{year},\n"
        f"  title  = {{{BOOK_TITLE}}},\n"
        f"  author = {{{{{AUTHORS}}}}},\n"
        f"  year   = {{{year}}},\n"
        f"  note   = {{Version {version}}},\n"
        f"  url    = {{{base_url}}}\n"
        f"}}"
    )
    return text, bibtex


def _block(app: Sphinx, docname: str) -> nodes.admonition | None:
    """The citation block of one page (None for the pages that get none)."""
    if docname in app.config.xaisurvey_cite_skip or docname not in app.env.titles:
        return None
    year_match = re.search(r"\d{4}", app.config.copyright or "")
    facts = {
        "year": year_match.group(0) if year_match else "n.d.",
        "version": _version(),
        "base_url": app.config.html_baseurl or "",
    }
    if docname == app.config.root_doc:
        heading, (text, bibtex) = "Cite this book", book_citation(**facts)
    else:
        heading, (text, bibtex) = "Cite this chapter", citation_for(app.env.titles[docname].astext(), docname, **facts)
    block = nodes.admonition(classes=["cite-this-chapter", "tip"])
    block += nodes.title(text=heading)
    block += nodes.paragraph(text=text)
    block += nodes.literal_block(bibtex, bibtex, language="bibtex")
    return block


def _append(block: nodes.Node | None, tree: nodes.Element) -> None:
    if block is not None:
        section = next(iter(tree.findall(nodes.section)), None)
        (section if section is not None else tree).append(block)


def _add_block(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    # The LaTeX builder resolves one document assembled from every page (``make pdf``): each page
    # in it starts with a start_of_file node, and gets its block there.
    if app.builder.format == "latex":
        for start in list(doctree.findall(addnodes.start_of_file)):
            _append(_block(app, start["docname"]), start)
    _append(_block(app, docname), doctree)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("xaisurvey_cite_skip", [], "env")
    app.connect("doctree-resolved", _add_block)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
