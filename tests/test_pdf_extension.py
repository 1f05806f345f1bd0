"""The LaTeX helpers of `_ext/xaisurvey_pdf.py` (`make pdf`): HTML tables and math scripts."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pytest.importorskip("sphinx")
ext = _load("xaisurvey_pdf", ROOT / "_ext" / "xaisurvey_pdf.py")


def test_the_performance_table_becomes_a_docutils_table() -> None:
    bench = _load("bench_attribution_for_pdf", ROOT / "benchmarks" / "attribution.py")
    rows = [
        {"task": "floor: input", "group": "floor", "floor": None, "median_s": 0.012, "ratio_to_floor": 1.0,
         "ratio_q1": 1.0, "ratio_q3": 1.0, "memory_ratio_to_floor": None},
        {"task": "saliency", "group": "ours", "floor": "floor: input", "median_s": 0.0125,
         "ratio_to_floor": 1.04, "ratio_q1": 1.01, "ratio_q3": 1.07, "memory_ratio_to_floor": 1.0},
    ]
    table = ext.html_table(bench.to_compact_html(rows))
    assert table is not None
    head = [entry.astext() for entry in table.findall(lambda n: n.tagname == "entry")][:6]
    assert head == ["task", "library", "floor", "median (ms)", "time / floor", "memory / floor"]
    body_rows = list(table.findall(lambda n: n.tagname == "row"))[1:]
    assert [[e.astext() for e in row.children] for row in body_rows] == [
        ["floor: input", "floor", "-", "12", "1", "-"],
        ["saliency", "ours", "floor: input", "12", "1.04 (1.01-1.07)", "1.00"],
    ]


def test_html_without_a_regular_table_is_not_a_table() -> None:
    assert ext.html_table("<div><select><option>cat</option></select></div>") is None
    assert ext.html_table("<table><tr><td>a</td></tr><tr><td>b</td><td>c</td></tr></table>") is None


def test_bare_font_scripts_get_braces_for_unicode_math() -> None:
    assert ext.brace_scripts(r"z^\mathcal{B} + a_\mathrm{max}") == r"z^{\mathcal{B}} + a_{\mathrm{max}}"
    already = r"z^{\mathcal{B}} + \mathcal{B}_i + x^2"
    assert ext.brace_scripts(already) == already
