"""The Claims appendix: a false claim fails the book's build, a true one is listed with its values.

Like ``test_book_fails_loudly``, each test builds a tiny book with the project's own
``_config.yml`` (so its local extensions, the Claims page's among them) and the exact flags of
``make book``: a root page that carries the Claims directive and one chapter that checks claims.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_book_fails_loudly import FRONT_MATTER, JUPYTER_BOOK, ROOT, _book_flags

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="the book extra is not installed"),
]

ROOT_PAGE = "# Claims\n\n```{xaisurvey-claims}\n```\n"


def _chapter(statement: str, condition: str) -> str:
    return FRONT_MATTER + "# A demo chapter\n\n```{code-cell} ipython3\n" + (
        "from xaisurvey.claims import Ledger\n"
        "ledger = Ledger('demo/01-chapter')\n"
        "a, b = 0.75, 0.25\n"
        f"ledger.check({statement!r}, {condition}, values={{'a': a, 'b': b}})\n"
    ) + "```\n"


def _build(tmp_path: Path, chapter: str) -> subprocess.CompletedProcess[str]:
    book = tmp_path / "book"
    (book / "chapters" / "demo").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    shutil.copy(ROOT / "references.bib", book / "references.bib")
    shutil.copytree(ROOT / "_ext", book / "_ext")
    if (ROOT / "_static").is_dir():  # the config's html_static_path (the book's CSS)
        shutil.copytree(ROOT / "_static", book / "_static", ignore=shutil.ignore_patterns("mathjax"))
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nchapters:\n  - file: chapters/demo/01-chapter\n")
    (book / "index.md").write_text(ROOT_PAGE)
    (book / "chapters" / "demo" / "01-chapter.md").write_text(chapter)
    env = dict(os.environ)
    env["XAISURVEY_CLAIMS_DIR"] = str(tmp_path / "claims")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([str(JUPYTER_BOOK), "build", str(book), *_book_flags()],
                          capture_output=True, text=True, timeout=300, env=env)


def test_a_true_claim_is_listed_on_the_claims_page(tmp_path: Path) -> None:
    result = _build(tmp_path, _chapter("a is three times b", "abs(a - 3 * b) < 1e-12"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = (tmp_path / "book" / "_build" / "html" / "index.html").read_text()
    assert "a is three times b" in html
    assert "a = 0.75; b = 0.25" in html
    assert 'href="chapters/demo/01-chapter.html"' in html  # the link to where it is stated
    assert "1 checked claims in 1 chapters" in html


def test_a_false_claim_fails_the_build(tmp_path: Path) -> None:
    result = _build(tmp_path, _chapter("b is larger than a", "b > a"))
    assert result.returncode != 0
    assert "'b is larger than a' no longer holds" in result.stdout + result.stderr
