"""Sphinx extension: the Claims appendix, generated from the claims the chapters checked.

Every chapter records the sentences it checks (:class:`xaisurvey.claims.Ledger`) as
``$XAISURVEY_CLAIMS_DIR/<chapter>.json`` while it executes. A page that contains the directive

.. code-block:: markdown

    ```{xaisurvey-claims}
    ```

gets, when it is written (``doctree-resolved``, after every chapter has been read and therefore
executed), a table of the number of claims per chapter and, for each chapter, every claim with
its values and a link to the chapter. Only chapters that are in the table of contents are listed.
A ledger whose chapter has no source page (a misspelt name) is a warning, so the ``-W`` build fails.

When ``XAISURVEY_CLAIMS_DIR`` is not set (``make book`` sets it), the extension sets it to
``<book>/_build/claims`` before any chapter executes, so the kernels write where the page reads.
The page is re-read on every build, so its list is never stale.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

CHAPTERS = "chapters"  # a ledger's chapter is the page's path under this folder


class claims_placeholder(nodes.General, nodes.Element):
    """Where the generated list goes; replaced at ``doctree-resolved``."""


class ClaimsDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.metadata[self.env.docname]["xaisurvey_claims_page"] = True
        return [claims_placeholder()]


def claims_dir() -> Path | None:
    folder = os.environ.get("XAISURVEY_CLAIMS_DIR")
    return Path(folder) if folder else None


def _set_default_dir(app: Sphinx, config: Any) -> None:
    if not os.environ.get("XAISURVEY_CLAIMS_DIR"):
        os.environ["XAISURVEY_CLAIMS_DIR"] = str(Path(app.srcdir) / "_build" / "claims")


def read_ledgers(folder: Path | None) -> dict[str, list[dict[str, Any]]]:
    """``{chapter: [claim, ...]}`` from every ledger file in ``folder``."""
    ledgers: dict[str, list[dict[str, Any]]] = {}
    if folder is None or not folder.is_dir():
        return ledgers
    for path in sorted(folder.glob("*.json")):
        payload = json.loads(path.read_text())
        ledgers.setdefault(payload["chapter"], []).extend(payload.get("claims", []))
    return ledgers


def _claims_pages(app: Sphinx) -> list[str]:
    return [d for d, meta in app.env.metadata.items() if meta.get("xaisurvey_claims_page")]


def _always_reread(app: Sphinx, env: Any, added: set, changed: set, removed: set) -> list[str]:
    # The page depends on files Sphinx does not track: read (and so write) it on every build.
    return [d for d in _claims_pages(app) if d not in removed]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _link(app: Sphinx, fromdoc: str, todoc: str, text: str) -> nodes.Node:
    para = nodes.inline()
    try:
        uri = app.builder.get_relative_uri(fromdoc, todoc)
    except Exception:  # a builder without pages (e.g. linkcheck): text only
        para += nodes.Text(text)
        return para
    para += nodes.reference("", text, internal=True, refuri=uri)
    return para


def _table(rows: list[list[nodes.Node | str]], widths: list[int], header: list[str]) -> nodes.table:
    table = nodes.table(classes=["xaisurvey-claims-counts"])
    group = nodes.tgroup(cols=len(widths))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for text in header:
        row += nodes.entry("", nodes.paragraph(text=text))
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", cell if isinstance(cell, nodes.Node) else nodes.Text(cell))
            row += entry
        body += row
    return table


def render(app: Sphinx, docname: str) -> list[nodes.Node]:
    """The generated content of the Claims page."""
    env = app.env
    ledgers = read_ledgers(claims_dir())
    srcdir = Path(app.srcdir)
    for chapter in ledgers:
        doc = f"{CHAPTERS}/{chapter}"
        if not any((srcdir / (doc + suffix)).exists() for suffix in (".md", ".ipynb", ".rst")):
            logger.warning(f"claims recorded for {chapter!r}, which is no page under {CHAPTERS}/",
                           location=docname)
    in_toc = set(env.toctree_includes.get(env.config.root_doc, []))
    for children in env.toctree_includes.values():
        in_toc.update(children)
    order = [d for d in _toc_order(env) if d.startswith(CHAPTERS + "/")]
    listed = [d for d in order if d[len(CHAPTERS) + 1:] in ledgers and d in in_toc]
    total = sum(len(ledgers[d[len(CHAPTERS) + 1:]]) for d in listed)
    out: list[nodes.Node] = [nodes.paragraph(
        text=f"{total} checked claims in {len(listed)} chapters. Each was true when this book "
             "was built; a claim that turns false stops the build.")]
    rows = [[_link(app, docname, d, env.titles[d].astext()), str(len(ledgers[d[len(CHAPTERS) + 1:]]))]
            for d in listed]
    rows.append(["Total", str(total)])
    out.append(_table(rows, [70, 15], ["Chapter", "Claims"]))
    for doc in listed:
        claims = ledgers[doc[len(CHAPTERS) + 1:]]
        title = env.titles[doc].astext()
        section = nodes.section(ids=[nodes.make_id("claims-" + doc)], names=[])
        section += nodes.title(text=f"{title} ({len(claims)})")
        intro = nodes.paragraph()
        intro += nodes.Text("Stated in ")
        intro += _link(app, docname, doc, title)
        intro += nodes.Text(".")
        section += intro
        items = nodes.enumerated_list(classes=["xaisurvey-claims"])
        for claim in claims:
            item = nodes.list_item()
            item += nodes.paragraph(text=claim["statement"])
            values = claim.get("values") or {}
            detail = "; ".join(f"{k} = {_format_value(v)}" for k, v in values.items())
            test = claim.get("test", "condition")
            text = f"{detail} ({test})" if detail else f"({test})"
            item += nodes.paragraph(text=text, classes=["xaisurvey-claim-values"])
            items += item
        if claims:  # an empty list is an error in LaTeX (``make pdf``)
            section += items
        out.append(section)
    return out


def _toc_order(env: Any) -> list[str]:
    """Documents in the order of the table of contents (depth first from the root)."""
    seen: list[str] = []

    def walk(doc: str) -> None:
        if doc in seen:
            return
        seen.append(doc)
        for child in env.toctree_includes.get(doc, []):
            walk(child)

    walk(env.config.root_doc)
    return seen


def _resolve(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for node in list(doctree.findall(claims_placeholder)):
        node.replace_self(render(app, docname))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(claims_placeholder)
    app.add_directive("xaisurvey-claims", ClaimsDirective)
    app.connect("config-inited", _set_default_dir)
    app.connect("env-get-outdated", _always_reread)
    app.connect("doctree-resolved", _resolve)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": False}
