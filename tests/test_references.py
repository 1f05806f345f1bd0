"""references.bib parses, holds each key once, and every key the chapters cite exists."""
from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIB = ROOT / "references.bib"


def test_bibliography_parses_without_duplicates() -> None:
    pybtex = pytest.importorskip("pybtex.database")
    entries = pybtex.parse_file(str(BIB)).entries  # raises on an unclosed entry
    keys = re.findall(r"^@\w+\{([^,]+),", BIB.read_text(), re.M)
    duplicates = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert duplicates == [] and len(entries) == len(keys)


def test_every_cited_key_exists() -> None:
    keys = set(re.findall(r"^@\w+\{([^,]+),", BIB.read_text(), re.M))
    missing = {}
    for page in (ROOT / "chapters").rglob("*.md"):
        for group in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", page.read_text()):
            for key in (k.strip() for k in group.split(",")):
                if key not in keys:
                    missing.setdefault(key, page.relative_to(ROOT).as_posix())
    assert missing == {}, f"cited but not in references.bib: {missing}"
