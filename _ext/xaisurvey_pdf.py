"""Sphinx extension: the printed book (``make pdf``) and the link to it from the online one.

LaTeX builder: a code cell whose output exists only as HTML (IPython's ``HTML`` object) would
print as ``<IPython.core.display.HTML object>``, its plain-text fallback. Before MyST-NB picks an
output format, such an output becomes a table when it is an HTML table, and otherwise (the
explorer's menus, which need a browser) a sentence that points to the page in the online edition.

LaTeX builder: a font command written as a bare sub- or superscript (``z^\\mathcal{B}``, fine for
MathJax and classic LaTeX) gets the braces that unicode-math, which sphinx-jupyterbook-latex loads,
requires (``z^{\\mathcal{B}}``); without them xelatex stops with "Missing { inserted".

HTML builder: the download menu of every page gets a link to the whole book as a PDF, which
``make pdf`` copies next to the HTML (``_build/html/<latex target>.pdf``).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

# The outputs a LaTeX document can print (MyST-NB's priority list for the latex builder).
PRINTABLE = {"application/pdf", "image/png", "image/jpeg", "text/latex", "text/markdown"}


class _TableParser(HTMLParser):
    """The rows of the first HTML table: header rows and body rows, each a list of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[list[str]] = []
        self.body: list[list[str]] = []
        self._in_head = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._depth += 1
        elif self._depth != 1:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._depth -= 1
        elif self._depth != 1:
            return
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            (self.head if self._in_head else self.body).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_table(html: str) -> nodes.table | None:
    """The first table of ``html`` as a docutils table (None when it has no regular table)."""
    if "<table" not in html:
        return None
    parser = _TableParser()
    parser.feed(html)
    rows = parser.head + parser.body
    if not rows or len({len(row) for row in rows}) != 1:
        return None
    table = nodes.table(classes=["xaisurvey-html-table"])
    group = nodes.tgroup(cols=len(rows[0]))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in rows[0])
    for part, part_rows in ((nodes.thead(), parser.head), (nodes.tbody(), parser.body)):
        for cells in part_rows:
            row = nodes.row()
            for text in cells:
                row += nodes.entry("", nodes.paragraph(text=text))
            part += row
        if part_rows:
            group += part
    return table


def source_docname(env: Any, node: nodes.Node) -> str:
    """The page a node comes from in the LaTeX builder's single, assembled document.

    The node's source file names it (MyST-NB records it on every output); failing that, the
    enclosing start_of_file node, and failing that, the document being resolved.
    """
    source = getattr(node, "source", None) or node.get("source") if isinstance(node, nodes.Element) else None
    docname = env.path2doc(source) if source else None
    if docname:
        return docname
    while node is not None:
        if isinstance(node, addnodes.start_of_file) and node.get("docname"):
            return node["docname"]
        node = node.parent
    return env.docname


def online_url(app: Sphinx, docname: str) -> str:
    base = (app.config.html_baseurl or "").rstrip("/")
    return f"{base}/{docname}.html" if base else f"{docname}.html"


BARE_SCRIPT = re.compile(
    r"([_^])\s*(\\(?:mathcal|mathbb|mathbf|mathrm|mathit|mathsf|mathtt|mathfrak|mathscr|boldsymbol|"
    r"operatorname|text)\s*\{[^{}]*\})"
)


def brace_scripts(tex: str) -> str:
    """``x^\\mathcal{B}`` -> ``x^{\\mathcal{B}}``: scripts that unicode-math can typeset."""
    return BARE_SCRIPT.sub(r"\1{\2}", tex)


class BraceMathScripts(SphinxPostTransform):
    """Mathematics, for the LaTeX builder: braces around bare font-command scripts."""

    default_priority = 5
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block)))):
            tex = node.astext()
            fixed = brace_scripts(tex)
            if fixed != tex:
                node.children = []
                node += nodes.Text(fixed)


class PrintHtmlOutputs(SphinxPostTransform):
    """HTML-only cell outputs, for the LaTeX builder: a table, or a pointer to the online page."""

    default_priority = 3  # before MyST-NB's SelectMimeType (4) discards the HTML
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        def is_bundle(node: nodes.Node) -> bool:
            return isinstance(node, nodes.container) and node.get("nb_element", "") == "mime_bundle"

        for bundle in list(self.document.findall(is_bundle)):
            types = {child.get("mime_type") for child in bundle.children}
            if "text/html" not in types or types & PRINTABLE:
                continue
            html = next(child for child in bundle.children if child.get("mime_type") == "text/html").astext()
            table = html_table(html)
            if table is not None:
                bundle.replace_self(table)
                continue
            url = online_url(self.app, source_docname(self.env, bundle))
            note = nodes.paragraph(classes=["xaisurvey-online-only"])
            note += nodes.emphasis(text="This part of the page needs a browser; it is in the online edition: ")
            note += nodes.reference(url, url, refuri=url)
            bundle.replace_self(note)


def pdf_name(app: Sphinx) -> str:
    """The PDF's file name: the LaTeX target of ``latex_documents`` with ``.pdf``."""
    documents = app.config.latex_documents
    target = documents[0][1] if documents else "book.tex"
    return str(Path(target).with_suffix(".pdf"))


def _add_pdf_button(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    for button in context.get("header_buttons", []):
        if button.get("label") == "download-buttons":
            button["buttons"].append(
                {
                    "type": "link",
                    "url": context["pathto"](pdf_name(app), 1),
                    "text": "book (PDF)",
                    "tooltip": "Download the whole book as a PDF",
                    "icon": "fas fa-book",
                    "label": "download-book-pdf-button",
                }
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_post_transform(PrintHtmlOutputs)
    app.add_post_transform(BraceMathScripts)
    app.connect("html-page-context", _add_pdf_button, priority=600)  # after the theme's buttons (501)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
