"""Helpers for the book's pages that also work when a chapter runs as a plain
notebook."""

from __future__ import annotations

from typing import Any


def _plain(value: Any) -> Any:
    """NumPy and PyTorch scalars as Python numbers, so ``{glue:text}`name:.2f``` can
    format them."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    return value


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue ``value`` under ``name`` for the book's prose ({glue:text}`name`,
    {glue:figure}`name`).

    In the book build this is ``myst_nb.glue``. Where myst-nb is not installed (Colab, a
    plain Jupyter server) it falls back to showing the value with its name, so the
    notebook still runs and the reader still sees the number. NumPy and PyTorch scalars
    are glued as Python numbers (myst-nb cannot format ``np.float64(0.5)``). Returns
    ``None``, so a cell ending in a glue call prints nothing.

    Example:
        >>> import numpy as np
        >>> from xaisurvey import glue
        >>> glue("answer", np.float64(42.0), display=False)
    """
    value = _plain(value)
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:  # outside the book: show what would have been glued
        if display:
            print(name if hasattr(value, "savefig") else f"{name}: {value!r}")
        return None
    _myst_glue(name, value, display=display)
    return None
