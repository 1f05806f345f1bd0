"""The book build must fail loudly: a raising cell, a broken reference or an unexecuted page stop it.

Each test builds a one-page book with the project's own ``_config.yml`` and the exact flags of
``make book`` (read from the Makefile), so the guarantee is about the real configuration.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")

FRONT_MATTER = textwrap.dedent(
    """\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---
    """
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="the book extra is not installed"),
]


def _book_flags() -> list[str]:
    match = re.search(r"^BOOK_FLAGS\s*:?=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile must define BOOK_FLAGS"
    return match.group(1).split()


def _build(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    shutil.copy(ROOT / "references.bib", book / "references.bib")
    shutil.copytree(ROOT / "_ext", book / "_ext")  # the config's local Sphinx extensions
    # the config's static files (the stylesheet; not the large MathJax copy)
    shutil.copytree(ROOT / "_static", book / "_static", ignore=shutil.ignore_patterns("mathjax"))
    (book / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    (book / "index.md").write_text(page)
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(book), *_book_flags()],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_makefile_builds_with_warnings_as_errors() -> None:
    flags = _book_flags()
    assert {"-W", "-n", "--keep-going"} <= set(flags)


def test_a_good_page_builds(tmp_path: Path) -> None:
    # The control: without it, the failures below could come from a broken set-up.
    page = FRONT_MATTER + "# Good\n\n```{code-cell} ipython3\nprint(6 * 7)\n```\n"
    result = _build(tmp_path, page)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = (tmp_path / "book" / "_build" / "html" / "index.html").read_text()
    assert "42" in html  # the cell really ran


def test_a_raising_cell_fails_the_build(tmp_path: Path) -> None:
    page = FRONT_MATTER + "# Broken\n\n```{code-cell} ipython3\nraise ValueError('boom from a cell')\n```\n"
    result = _build(tmp_path, page)
    assert result.returncode != 0
    assert "boom from a cell" in result.stdout + result.stderr


def test_a_broken_cross_reference_fails_the_build(tmp_path: Path) -> None:
    page = FRONT_MATTER + "# Broken reference\n\nSee {ref}`a-label-that-does-not-exist`.\n"
    result = _build(tmp_path, page)
    assert result.returncode != 0
    assert "a-label-that-does-not-exist" in result.stdout + result.stderr


def test_a_code_cell_in_a_page_without_notebook_front_matter_fails_the_build(tmp_path: Path) -> None:
    # Without the jupytext front matter myst-nb treats the page as plain text: the cell would
    # silently never run. The build must refuse instead.
    page = "# Not a notebook\n\n```{code-cell} ipython3\nprint('never runs')\n```\n"
    result = _build(tmp_path, page)
    assert result.returncode != 0
    assert "code-cell" in result.stdout + result.stderr
