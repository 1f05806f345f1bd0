"""Every chapter page of the built book shows its run time and whether it needs the data.

Run after `make book` with `make check-site` (the `site` marker). The badges come from
`_ext/xaisurvey_badges.py`; `tests/test_badges.py` checks how they are computed.
"""
from __future__ import annotations

import re

import pytest

from tests.site.test_site import HTML, ROOT, _open, browser, site, toc_pages  # noqa: F401 (fixtures)

pytestmark = pytest.mark.site


def chapter_pages() -> list[str]:
    """The pages of the table of contents that are notebooks under `chapters/` (the ones with badges)."""
    pages = []
    for page in toc_pages():
        source = ROOT / page.replace(".html", ".md")
        if page.startswith("chapters/") and source.exists() and "format_name: myst" in source.read_text()[:600]:
            pages.append(page)
    return pages


def test_there_are_chapter_pages() -> None:
    assert len(chapter_pages()) >= 20


@pytest.mark.parametrize("page", chapter_pages())
def test_a_chapter_shows_its_run_time_and_data_need(page: str) -> None:
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first")
    html = (HTML / page).read_text()
    runtime = re.search(r'xaisurvey-badge-runtime.*?badge-value">([^<]+)<', html, re.S)
    assert runtime, f"{page}: no run-time badge"
    assert re.fullmatch(r"under a second|\d+ s|\d+\.\d min", runtime.group(1)), runtime.group(1)
    assert ("xaisurvey-badge-data" in html) != ("xaisurvey-badge-nodata" in html), f"{page}: one data badge wanted"


def test_the_badges_are_visible_under_the_title(site: str, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = next(p for p in chapter_pages() if "grad-cam" in p and "guided" not in p)
    _open(browser, site + page)
    from selenium.webdriver.common.by import By

    title = browser.find_element(By.CSS_SELECTOR, "article h1")
    row = browser.find_element(By.CSS_SELECTOR, "p.xaisurvey-badges")
    assert row.is_displayed()
    assert row.location["y"] > title.location["y"]
    assert "Run time" in row.text and ("Needs the data" in row.text or "nothing to download" in row.text), row.text
