"""Sphinx extension: serve MathJax from the book itself when a local copy exists.

``make book`` unpacks MathJax 3 from the npm registry into ``_static/mathjax`` (when npm is
available), so the built site renders mathematics without reaching a CDN — offline readers, CI and
the browser test see the same pages. Without the local copy Sphinx's default CDN URL stays.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config

LOCAL_MATHJAX = Path("_static") / "mathjax" / "tex-mml-chtml.js"


def _use_local_mathjax(app: Sphinx, config: Config) -> None:
    if (Path(app.confdir) / LOCAL_MATHJAX).exists():
        config.mathjax_path = "mathjax/tex-mml-chtml.js"  # relative to the built _static folder
        if "_static" not in config.html_static_path:
            config.html_static_path = [*config.html_static_path, "_static"]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _use_local_mathjax, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
