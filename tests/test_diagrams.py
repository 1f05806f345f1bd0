"""Schematic diagrams and the timeline: they draw their labels, and the timeline's years are the
years of the cited papers in references.bib."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from xaisurvey.diagrams import (  # noqa: E402
    MILESTONES, bib_years, draw_grad_cam_pipeline, draw_perceptron, draw_sliding_window,
    draw_timeline, draw_visual_backprop,
)

ROOT = Path(__file__).resolve().parents[1]


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("draw,label", [
    (draw_perceptron, "step"), (draw_sliding_window, "output"), (draw_grad_cam_pipeline, "ReLU"),
    (draw_visual_backprop, "$a_1$"),
])
def test_each_diagram_draws_its_labels(draw, label) -> None:
    fig, ax = plt.subplots()
    assert label in _texts(draw(ax))
    plt.close(fig)


def test_bad_arguments_raise() -> None:
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="kernel"):
        draw_sliding_window(ax, size=3, kernel=4)
    with pytest.raises(ValueError, match="position"):
        draw_sliding_window(ax, size=6, kernel=3, position=(4, 0))
    plt.close(fig)


def test_timeline_years_match_the_bibliography_and_every_method_is_drawn() -> None:
    years = bib_years(ROOT / "references.bib")
    for m in MILESTONES:
        assert years[m.key] == m.year, (m.name, m.key, years.get(m.key))
    fig, ax = plt.subplots()
    drawn = {t.split(":")[0] for t in _texts(draw_timeline(ax))}
    assert drawn == {m.name for m in MILESTONES}
    plt.close(fig)
