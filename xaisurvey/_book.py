"""Helpers for the book's pages that also work when a chapter runs as a plain notebook."""
from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Glue ``value`` under ``name`` for the book's prose ({glue:text}`name`, {glue:figure}`name`).

    In the book build this is ``myst_nb.glue``. Where myst-nb is not installed (Colab, a plain
    Jupyter server) it falls back to showing the value with its name, so the notebook still runs
    and the reader still sees the number.

    Example:
        >>> from xaisurvey import glue
        >>> _ = glue("answer", 42, display=False)
    """
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:  # outside the book: show what would have been glued
        if display:
            print(f"{name}: {value!r}" if not hasattr(value, "savefig") else name)
        return value
    _myst_glue(name, value, display=display)
    return value
