"""The committed ``.ipynb`` beside each chapter (for Colab/Binder) must match its MyST source."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "tools" / "sync_notebooks.py")
sync = importlib.util.module_from_spec(spec)
assert spec.loader is not None
sys.modules["sync_notebooks"] = sync
spec.loader.exec_module(sync)

SOURCES = sync.chapter_sources()


def test_there_are_chapters() -> None:
    assert len(SOURCES) >= 2


@pytest.mark.parametrize("source", SOURCES, ids=[str(s.relative_to(ROOT)) for s in SOURCES])
def test_paired_notebook_matches_its_source(source: Path) -> None:
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.relative_to(ROOT)} is missing: run `make notebooks`"
    assert notebook.read_text() == sync.render(source), f"{notebook.relative_to(ROOT)} is stale: run `make notebooks`"


@pytest.mark.parametrize("source", SOURCES, ids=[str(s.relative_to(ROOT)) for s in SOURCES])
def test_paired_notebook_installs_the_package_only_when_missing(source: Path) -> None:
    cells = json.loads(source.with_suffix(".ipynb").read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert 'find_spec("xaisurvey") is None' in first and "pip" in first


def test_no_orphan_notebooks() -> None:
    sources = {s.with_suffix(".ipynb") for s in SOURCES}
    orphans = [p for p in (ROOT / "chapters").rglob("*.ipynb") if p not in sources]
    assert not orphans, f"notebooks without a MyST source: {orphans}"


def test_a_page_without_front_matter_is_not_a_chapter_source(tmp_path: Path) -> None:
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "plain.md").write_text("# Plain page\n")
    assert sync.chapter_sources(tmp_path) == []
