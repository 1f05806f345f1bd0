"""Write the paired ``.ipynb`` of every chapter, for Colab and Binder (``make notebooks``).

The MyST Markdown file is the source; the notebook beside it is generated from it, with one extra
first cell that installs ``xaisurvey`` where it is missing (Colab). The notebooks are committed so
that the launch buttons open a runnable notebook; Sphinx ignores them (``exclude_patterns``), and
``tests/test_notebooks_in_sync.py`` fails when one drifts from its source.

Usage: ``python tools/sync_notebooks.py`` (write) or ``python tools/sync_notebooks.py --check``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
INSTALL_URL = "git+https://github.com/xaisurvey/xaisurvey@main"
INSTALL_CELL = f'''# Colab / Binder: install xaisurvey when it is missing (the book's own build already has it).
# Data and pretrained weights are then downloaded on first use and verified by SHA-256.
import importlib.util, subprocess, sys
if importlib.util.find_spec("xaisurvey") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "xaisurvey @ {INSTALL_URL}"])'''


def chapter_sources(root: Path = ROOT) -> list[Path]:
    """Every MyST notebook source under ``chapters/`` (pages with jupytext front matter)."""
    return sorted(p for p in (root / "chapters").rglob("*.md") if "format_name: myst" in p.read_text()[:600])


def paired_notebook(source: Path) -> nbformat.NotebookNode:
    """The notebook generated from one MyST source: the install cell, then the chapter's cells."""
    notebook = jupytext.read(source, fmt="md:myst")
    install = nbformat.v4.new_code_cell(INSTALL_CELL, metadata={"tags": ["remove-cell"]})
    install.id = "install-xaisurvey"
    notebook.cells.insert(0, install)
    for index, cell in enumerate(notebook.cells[1:]):
        cell.id = f"cell-{index}"  # stable ids: regenerating gives the same file
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["colab"] = {"provenance": []}
    return notebook


def render(source: Path) -> str:
    return nbformat.writes(paired_notebook(source)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that are missing or stale")
    args = parser.parse_args(argv)
    stale = []
    for source in chapter_sources():
        target = source.with_suffix(".ipynb")
        text = render(source)
        if not target.exists() or target.read_text() != text:
            stale.append(target.relative_to(ROOT))
            if not args.check:
                target.write_text(text)
    sources = {s.with_suffix(".ipynb") for s in chapter_sources()}
    orphans = [p.relative_to(ROOT) for p in (ROOT / "chapters").rglob("*.ipynb") if p not in sources]
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path}")
    for path in orphans:
        print(f"orphan notebook without a MyST source: {path}")
    return 1 if (args.check and stale) or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
