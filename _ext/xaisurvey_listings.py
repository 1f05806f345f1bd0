"""Sphinx extension: package listings that show the algorithm, the full source one click away.

The chapters show the package's functions with ``literalinclude`` and ``:pyobject:``. A whole
docstring (Args, Returns, Raises, Example) would fill the page with text that is not the
algorithm, so for a listing of a documented object this extension

* shows the object with its docstring cut to the summary (the docstring's first paragraph),
* folds the complete source, docstring included, below it (an HTML ``<details>`` element; the
  PDF and other builders keep only the short listing), and
* links the object's entry on the API reference page when the page documents it (under its
  own module or a package that re-exports it).

``:docstring: full`` on a listing keeps the whole docstring (and adds nothing).
"""
from __future__ import annotations

import ast
import html
import textwrap
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.directives.code import LiteralInclude
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.writers.html5 import HTML5Translator

WIDTH = 88  # the package's line length (tests/test_line_length.py)


def short_source(code: str) -> str | None:
    """``code`` (one def or class) with its docstring cut to the first paragraph.

    None when there is nothing to cut (no docstring, or a docstring of one paragraph).
    """
    lines = code.split("\n")
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return None
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.ClassDef)):
        return None
    body = tree.body[0].body
    if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return None
    first, last = body[0].lineno - 1, body[0].end_lineno - 1  # indices into ``lines``
    doc_lines = lines[first:last + 1]
    blank = next((k for k, line in enumerate(doc_lines) if not line.strip()), None)
    if blank is None:
        return None  # a docstring of one paragraph is shown as it is
    summary = doc_lines[:blank]
    opening = summary[0].lstrip()
    quote = '"""' if '"""' in opening[:6] else "'''"
    indent = summary[0][: len(summary[0]) - len(opening)]
    if len(summary[-1]) + len(quote) <= WIDTH:
        summary[-1] += quote
    else:
        summary.append(indent + quote)
    return "\n".join(lines[:first] + summary + lines[last + 1:])


def api_candidates(path: str, qualname: str) -> list[str]:
    """Where the API page may document ``qualname`` of the module file ``path``."""
    parts = Path(path).with_suffix("").parts
    if "xaisurvey" not in parts:
        return []
    parts = parts[parts.index("xaisurvey"):]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return [".".join(parts[:k] + (qualname,)) for k in range(len(parts), 0, -1)]


class listing_full(nodes.General, nodes.Element):
    """The complete listing, folded (HTML only)."""


class listing_api(nodes.General, nodes.Element):
    """Placeholder for the link to the API page; resolved (or dropped) after reading."""


def visit_listing_full_html(self: HTML5Translator, node: listing_full) -> None:
    self.body.append('<details class="xaisurvey-listing-full"><summary>'
                     f"{html.escape(node['summary'])}</summary>")


def depart_listing_full_html(self: HTML5Translator, node: listing_full) -> None:
    self.body.append("</details>")


def skip(self: Any, node: nodes.Element) -> None:
    raise nodes.SkipNode


class Listing(LiteralInclude):
    """``literalinclude`` whose ``:pyobject:`` listings of the package show the algorithm."""

    option_spec = dict(LiteralInclude.option_spec, docstring=directives.unchanged)

    def run(self) -> list[nodes.Node]:
        mode = self.options.pop("docstring", "summary")
        result = super().run()
        if mode == "full" or "pyobject" not in self.options or len(result) != 1:
            return result
        block = result[0]
        if not isinstance(block, nodes.literal_block):
            return result  # a captioned listing: left as it is
        short = short_source(block.astext())
        if short is None:
            return result
        full = block.deepcopy()
        full["ids"], full["names"] = [], []
        block.children = [nodes.Text(short)]
        block.rawsource = short
        qualname = self.options["pyobject"]
        folded = listing_full(summary=f"Full source of {qualname}, with its docstring")
        folded += full
        api = listing_api(candidates=api_candidates(self.arguments[0], qualname),
                          refdoc=self.env.docname)
        wrapper = nodes.container(classes=["xaisurvey-listing"])
        wrapper += [block, folded, api]
        return [wrapper]


ROLES = {"function": "func", "class": "class", "method": "meth", "attribute": "attr",
         "data": "data", "exception": "exc", "property": "attr"}


class ResolveApiLinks(SphinxPostTransform):
    """Turn each placeholder into a reference to the API entry, or drop it."""

    default_priority = 5  # before Sphinx's ReferencesResolver (10) resolves the pending_xref

    def run(self, **kwargs: Any) -> None:
        objects = self.env.get_domain("py").objects
        for node in list(self.document.findall(listing_api)):
            found = next((name for name in node["candidates"]
                          if name in objects and objects[name].objtype in ROLES), None)
            if found is None:
                node.parent.remove(node)
                continue
            ref = pending_xref("", refdomain="py", reftype=ROLES[objects[found].objtype],
                               reftarget=found, refexplicit=True, refwarn=True,
                               refdoc=node["refdoc"])
            ref += nodes.literal(found, found, classes=["xref", "py"])
            para = nodes.paragraph(classes=["xaisurvey-listing-api"])
            para += nodes.Text("API reference: ")
            para += ref
            node.replace_self(para)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("literalinclude", Listing, override=True)
    app.add_node(listing_full,
                 html=(visit_listing_full_html, depart_listing_full_html),
                 latex=(skip, None), text=(skip, None), man=(skip, None),
                 texinfo=(skip, None))
    app.add_node(listing_api, html=(skip, None), latex=(skip, None), text=(skip, None),
                 man=(skip, None), texinfo=(skip, None))
    app.add_post_transform(ResolveApiLinks)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
