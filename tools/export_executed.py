"""Put the executed notebook of every chapter behind the book's download button (``make book``).

Jupyter Book links each page's download button to ``_build/html/_sources/<page>.ipynb``, but writes
the executed outputs there only when the page was executed in this very build: a page served from
the execution cache gets a notebook without outputs. This script takes the outputs from the
execution cache (the same ones the HTML shows), so the download is always the executed notebook,
with the Colab install cell first, as in the paired notebooks.
"""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat
from jupyter_cache import get_cache

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_notebooks import INSTALL_CELL, chapter_sources  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def export(build: Path = ROOT / "_build") -> list[Path]:
    cache = get_cache(build / ".jupyter_cache")
    written = []
    for source in chapter_sources():
        target = build / "html" / "_sources" / source.relative_to(ROOT).with_suffix(".ipynb")
        if not target.exists():  # a chapter that is not in this build's table of contents
            continue
        notebook = jupytext.read(source, fmt="md:myst")
        try:
            _, notebook = cache.merge_match_into_notebook(notebook)
        except KeyError as error:
            raise SystemExit(f"no executed notebook in the cache for {source.relative_to(ROOT)}: {error}")
        notebook.cells.insert(0, nbformat.v4.new_code_cell(INSTALL_CELL, metadata={"tags": ["remove-cell"]}))
        notebook.metadata.pop("jupytext", None)
        nbformat.write(notebook, target)
        written.append(target)
    return written


if __name__ == "__main__":
    paths = export()
    print(f"executed notebooks behind the download buttons: {len(paths)}")
