"""The built site, opened in a real browser (headless Chromium driven by Selenium).

Run after `make book` with `make check-site` (CI does). Every page of the table of contents is
opened: every image must load, the mathematics must be typeset by MathJax, and every internal
link must lead to an existing page and anchor. On the chapter pages no code block (cell, listing,
folded full source, output) is wider than the text column, which holds the package's 88
characters. The search page must find "Grad-CAM". A screenshot
of a method chapter is saved under `_build/site-screenshots/` as a build artefact.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "site-screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.site


def toc_pages() -> list[str]:
    """Every page of `_toc.yml`, as a path relative to the HTML root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("chapters", []) + entry.get("sections", []))

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return [page + ".html" for page in pages]


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser, url: str) -> None:  # type: ignore[no-untyped-def]
    browser.get(url)
    # Wait for MathJax (when the page uses it) to finish typesetting.
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (window.MathJax && MathJax.startup && MathJax.startup.promise) {"
        "  MathJax.startup.promise.then(() => done(true), () => done(false)); } else { done(true); }"
    )


def _anchor_exists(page: Path, fragment: str) -> bool:
    text = page.read_text(errors="replace")
    fragment = urllib.parse.unquote(fragment)
    return re.search(r'\b(id|name)="' + re.escape(fragment) + '"', text) is not None


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders(site: str, browser, page: str) -> None:  # type: ignore[no-untyped-def]
    assert (HTML / page).exists(), f"{page} was not built"
    _open(browser, site + page)

    source = (HTML / page).read_text()
    assert "&lt;Figure size" not in source, f"{page} shows a figure as text instead of an image"

    # A Markdown table from a code cell that was not rendered as a table shows up as a paragraph
    # of pipes with a |---| (or, after smart quotes, |—|) separator row.
    paragraphs = browser.execute_script("return Array.from(document.querySelectorAll('p')).map(p => p.innerText);")
    unrendered = [p[:80] for p in paragraphs if re.search(r"\|\s*[-\u2013\u2014:]+\s*\|", p)]
    assert unrendered == [], f"{page} shows Markdown tables as text: {unrendered}"

    broken_images = browser.execute_script(
        "return Array.from(document.images)"
        ".filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src);"
    )
    assert broken_images == [], f"images that did not load on {page}: {broken_images}"

    math_count = browser.execute_script("return document.querySelectorAll('.math').length;")
    if math_count:
        typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length;")
        errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length;")
        assert typeset >= math_count, f"{page}: {math_count} formulas, only {typeset} typeset by MathJax"
        assert errors == 0, f"{page}: {errors} formulas failed to typeset"

    links = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);")
    broken_links = []
    for link in links:
        parsed = urllib.parse.urlparse(link)
        if not link.startswith(site):
            continue  # external: the launch buttons, the repository, DOIs
        target = HTML / urllib.parse.unquote(parsed.path[1:] or "index.html")
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken_links.append(link)
        elif parsed.fragment and target.suffix == ".html" and not _anchor_exists(target, parsed.fragment):
            broken_links.append(link)
    assert broken_links == [], f"internal links on {page} that lead nowhere: {sorted(set(broken_links))}"


# Every code block of the article: cell inputs, listings, their folded full source, outputs.
_WIDE_BLOCKS_JS = """
document.querySelectorAll('.bd-article details').forEach(d => { d.open = true; });
return Array.from(document.querySelectorAll('.bd-article pre'))
  .filter(pre => pre.offsetParent !== null && pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => {
    const lines = pre.innerText.split('\\n');
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    const where = pre.closest('.xaisurvey-listing') ? 'package listing'
      : pre.closest('.cell_output') ? 'cell output'
      : pre.closest('.cell_input') ? 'cell input'
      : pre.closest('dl.py') ? 'API entry'
      : (pre.closest('[class*="highlight-"]') || pre).className;
    return [where, pre.scrollWidth, pre.clientWidth, longest.length, longest.slice(0, 90)];
  });
"""

# How many characters of the code font fit in a code block of the article.
_COLUMN_JS = """
const pre = document.querySelector('.bd-article div.highlight pre');
if (!pre) return null;
const probe = document.createElement('span');
probe.textContent = 'x'.repeat(100);
pre.appendChild(probe);
const perChar = probe.getBoundingClientRect().width / 100;
probe.remove();
const style = getComputedStyle(pre);
const inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
return [Math.floor(inner / perChar), inner, perChar, style.fontSize];
"""

#: The package's line length (tests/test_line_length.py): a listing of that width must fit.
PACKAGE_WIDTH = 88


def _chapter_pages() -> list[str]:
    return [page for page in toc_pages() if page.startswith("chapters/")]


def test_the_column_holds_a_package_line(site: str, browser) -> None:  # type: ignore[no-untyped-def]
    """The text column of a chapter holds 88 characters of code (the window of `browser`)."""
    chosen = next(p for p in _chapter_pages() if "grad-cam" in p and "guided" not in p)
    _open(browser, site + chosen)
    columns, inner, per_char, font = browser.execute_script(_COLUMN_JS)
    assert columns >= PACKAGE_WIDTH, (
        f"a code block on {chosen} holds {columns} characters ({inner:.0f} px at "
        f"{per_char:.2f} px per character, font {font}), fewer than the package's {PACKAGE_WIDTH}"
    )


@pytest.mark.parametrize("page", _chapter_pages())
def test_code_blocks_fit_the_column(site: str, browser, page: str) -> None:  # type: ignore[no-untyped-def]
    """No code block is wider than the text column (folded blocks opened): none scrolls sideways."""
    _open(browser, site + page)
    too_wide = browser.execute_script(_WIDE_BLOCKS_JS)
    report = "\n".join(
        f"  [{where}] {scroll}px in {client}px: longest line {length} characters: {line!r}"
        for where, scroll, client, length, line in too_wide
    )
    assert too_wide == [], f"{page}: {len(too_wide)} code blocks wider than the column:\n{report}"


def test_search_finds_grad_cam(site: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, site + "search.html?q=Grad-CAM")
    results = WebDriverWait(browser, 30).until(
        lambda driver: driver.execute_script(
            "const items = document.querySelectorAll('ul.search li');"
            "return items.length ? Array.from(items).map(li => li.innerText) : null;"
        )
    )
    assert any("Grad-CAM" in text or "grad-cam" in text.lower() for text in results), results


def test_screenshot_of_a_method_chapter(site: str, browser) -> None:  # type: ignore[no-untyped-def]
    pages = toc_pages()
    chosen = next((p for p in pages if "grad-cam" in p and "guided" not in p), pages[0])
    _open(browser, site + chosen)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (Path(chosen).stem + ".png")
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page


def _set_theme(browser, mode: str) -> None:  # type: ignore[no-untyped-def]
    """Switch the theme as its toggle does (the attribute the theme's CSS keys on, and its memory)."""
    browser.execute_script(
        "document.documentElement.dataset.theme = arguments[0]; document.documentElement.dataset.mode = arguments[0];"
        "localStorage.setItem('theme', arguments[0]); localStorage.setItem('mode', arguments[0]);",
        mode,
    )


def test_figures_keep_their_colours_in_dark_mode(site: str, browser) -> None:  # type: ignore[no-untyped-def]
    """A heat map must not change meaning in dark mode: figures are shown unfiltered on white.

    Screenshots of one method chapter in each mode are kept in `_build/site-screenshots/`.
    """
    pages = toc_pages()
    chosen = next((p for p in pages if "grad-cam" in p and "guided" not in p), pages[0])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    styles = {}
    for mode in ("light", "dark"):
        _open(browser, site + chosen)
        _set_theme(browser, mode)
        styles[mode] = browser.execute_script(
            "return Array.from(document.querySelectorAll('.bd-content img')).filter(img => img.naturalWidth > 0)"
            ".map(img => { const s = getComputedStyle(img); return [s.filter, s.backgroundColor]; });"
        )
        page_background = browser.execute_script("return getComputedStyle(document.body).backgroundColor;")
        path = SCREENSHOTS / f"{Path(chosen).stem}-{mode}.png"
        assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
        if mode == "dark":  # the theme really is dark: the page's background is not white
            assert page_background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), page_background
    assert styles["dark"], f"no figures found on {chosen}"
    assert all(f == "none" for f, _ in styles["dark"]), f"figures are filtered in dark mode: {styles['dark'][:3]}"
    assert all(bg == "rgb(255, 255, 255)" for _, bg in styles["dark"]), f"figures lack a light background: {styles['dark'][:3]}"
    _set_theme(browser, "light")


def test_explorer_shows_the_precomputed_maps(site: str, browser) -> None:  # type: ignore[no-untyped-def]
    """Click through the explorer: each choice draws exactly the stored map, and the image changes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, site + "chapters/appendix/explorer.html")
    root = browser.find_element(By.CSS_SELECTOR, ".xaisurvey-explorer")
    eid = root.get_attribute("id")
    data = browser.execute_script(f"const D = window.xaisurveyExplorer['{eid}'].data; "
                                  "return {methods: D.methods, photos: Object.keys(D.photos), layers: D.layers, classes: D.classes};")
    assert len(data["methods"]) >= 7 and len(data["photos"]) >= 2
    select = {role: Select(root.find_element(By.CSS_SELECTOR, f'select[data-role="{role}"]'))
              for role in ("photo", "method", "class", "layer")}
    drawings: dict[str, str] = {}
    for photo in data["photos"][:2]:
        for method in data["methods"]:
            select["photo"].select_by_value(photo)
            select["method"].select_by_value(method)
            cls = str(data["classes"][photo][-1][0])
            select["class"].select_by_value(cls)
            layer = data["layers"][method][0]
            select["layer"].select_by_value(layer)
            key = "|".join([photo, method, cls, layer])
            result = browser.execute_script(
                f"const E = window.xaisurveyExplorer['{eid}'], D = E.data;"
                "const canvas = document.querySelector('#' + arguments[1] + ' canvas');"
                "const px = canvas.getContext('2d').getImageData(0, 0, D.size, D.size).data;"
                "if (!D.maps[arguments[0]]) return {key: E.state.key, missing: true};"
                "const v = Uint8Array.from(atob(D.maps[arguments[0]]), c => c.charCodeAt(0)); let bad = 0;"
                "for (let i = 0; i < v.length; i++) { const c = D.lut[v[i]];"
                "  if (px[4*i] !== c[0] || px[4*i+1] !== c[1] || px[4*i+2] !== c[2]) bad++; }"
                "return {key: E.state.key, bad: bad, drawn: Array.from(px.slice(0, 4 * v.length)).join(',')};",
                key, eid)
            assert result["key"] == key, (result["key"], key)
            if result.get("missing"):
                status = root.find_element(By.CSS_SELECTOR, '[data-role="status"]').text
                assert "cannot explain" in status, f"{key}: no map and no reason given ({status!r})"
                continue
            assert result["bad"] == 0, f"{key}: {result['bad']} cells differ from the stored map"
            drawings[key] = result["drawn"]
    assert len(drawings) >= 7
    # The picture changes with the choice (some methods coincide after scaling, e.g. CAM and
    # Grad-CAM on a global-average-pooling head, so not every pair differs).
    assert len(set(drawings.values())) >= len(drawings) // 2
    first, second = data["photos"][:2]
    same_method = [m for m in data["methods"] if any(k.startswith(f"{first}|{m}|") for k in drawings)
                   and any(k.startswith(f"{second}|{m}|") for k in drawings)]
    assert same_method, "no method drew a map for both photos"
    m = same_method[0]
    a = next(v for k, v in drawings.items() if k.startswith(f"{first}|{m}|"))
    b = next(v for k, v in drawings.items() if k.startswith(f"{second}|{m}|"))
    assert a != b, f"{m}: the map did not change with the photo"
