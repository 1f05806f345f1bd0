"""Schematic diagrams drawn by code (matplotlib only), and the timeline of the book's
methods.

Each ``draw_*`` function draws into a given ``Axes`` and returns it, so that a chapter
composes them like any other figure. The texts they place are the labels a test can look
for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

__all__ = [
    "draw_perceptron",
    "draw_sliding_window",
    "draw_grad_cam_pipeline",
    "draw_visual_backprop",
    "Milestone",
    "MILESTONES",
    "bib_years",
    "draw_timeline",
]


def _box(
    ax: Axes,
    x: float,
    y: float,
    text: str,
    *,
    w: float = 1.6,
    h: float = 0.7,
    color: str = "#dbe8f5",
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.05",
            fc=color,
            ec="0.3",
            lw=0.8,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=7)


def _arrow(
    ax: Axes, start: tuple[float, float], end: tuple[float, float], text: str = ""
) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=8, lw=0.8, color="0.25"
        )
    )
    if text:
        ax.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 + 0.12,
            text,
            ha="center",
            va="bottom",
            fontsize=6,
        )


def _finish(ax: Axes, xlim: tuple[float, float], ylim: tuple[float, float]) -> Axes:
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return ax


def draw_perceptron(ax: Axes, n_inputs: int = 3) -> Axes:
    """The perceptron: inputs x_i, weights w_i, a weighted sum plus bias, a step
    function.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> "step" in [t.get_text() for t in draw_perceptron(ax).texts]
        True
    """
    if n_inputs < 1:
        raise ValueError(f"draw_perceptron: n_inputs must be >= 1, got {n_inputs}")
    ys = [(n_inputs - 1) / 2 - i for i in range(n_inputs)]
    for i, y in enumerate(ys, start=1):
        ax.add_patch(_circle((0, y)))
        ax.text(0, y, f"$x_{i}$", ha="center", va="center", fontsize=7)
        _arrow(ax, (0.3, y), (2.2, 0.0), f"$w_{i}$")
    _box(ax, 2.7, 0, "$\\sum_i w_i x_i + b$", w=1.1)
    _arrow(ax, (3.25, 0), (4.0, 0))
    _box(ax, 4.5, 0, "step", w=0.9)
    _arrow(ax, (4.95, 0), (5.7, 0))
    ax.text(6.0, 0, "$f(x) \\in \\{0, 1\\}$", ha="left", va="center", fontsize=7)
    return _finish(ax, (-0.5, 7.5), (min(ys) - 0.7, max(ys) + 0.7))


def _circle(center: tuple[float, float], radius: float = 0.3):
    from matplotlib.patches import Circle

    return Circle(center, radius, fc="white", ec="0.3", lw=0.8)


def draw_sliding_window(
    ax: Axes, size: int = 6, kernel: int = 3, position: tuple[int, int] = (1, 2)
) -> Axes:
    """A kernel sliding over an image: the window at ``position`` produces one output
    cell.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> "output" in [t.get_text() for t in draw_sliding_window(ax).texts]
        True
    """
    if not 1 <= kernel <= size:
        raise ValueError(
            f"draw_sliding_window: need 1 <= kernel <= size, got kernel={kernel},"
            f" size={size}"
        )
    r, c = position
    out = size - kernel + 1
    if not (0 <= r < out and 0 <= c < out):
        raise ValueError(
            f"draw_sliding_window: position must lie in [0, {out}), got {position}"
        )
    for i in range(size):
        for j in range(size):
            inside = r <= i < r + kernel and c <= j < c + kernel
            ax.add_patch(
                Rectangle(
                    (j, size - 1 - i),
                    1,
                    1,
                    fc="#f5d7a1" if inside else "white",
                    ec="0.5",
                    lw=0.6,
                )
            )
    ox = size + 2
    for i in range(out):
        for j in range(out):
            ax.add_patch(
                Rectangle(
                    (ox + j, size - 1 - i),
                    1,
                    1,
                    fc="#f5d7a1" if (i, j) == (r, c) else "white",
                    ec="0.5",
                    lw=0.6,
                )
            )
    _arrow(ax, (c + kernel, size - r - kernel / 2), (ox + c + 0.5, size - 0.5 - r))
    ax.text(
        size / 2,
        -0.6,
        f"input {size}x{size}, kernel {kernel}x{kernel}",
        ha="center",
        fontsize=7,
    )
    ax.text(ox + out / 2, -0.6, "output", ha="center", fontsize=7)
    return _finish(ax, (-0.5, ox + out + 0.5), (-1.2, size + 0.3))


def draw_grad_cam_pipeline(ax: Axes) -> Axes:
    """Grad-CAM: forward to the layer's maps A^k, backward to the gradients, global
    average to the weights alpha_k, weighted sum, ReLU, upsampling.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> "ReLU" in [t.get_text() for t in draw_grad_cam_pipeline(ax).texts]
        True
    """
    _box(ax, 0, 1, "image $x$", w=1.2)
    _box(ax, 2.2, 1, "conv layers", w=1.4)
    _box(ax, 4.6, 1, "maps $A^k$", w=1.4, color="#f5d7a1")
    _box(ax, 7.0, 1, "head", w=1.0)
    _box(ax, 9.0, 1, "score $y^c$", w=1.3)
    for a, b in ((0.6, 1.5), (2.9, 3.9), (5.3, 6.5), (7.5, 8.35)):
        _arrow(ax, (a, 1), (b, 1))
    _box(ax, 7.0, -0.4, "$\\partial y^c / \\partial A^k$", w=1.5, color="#f2c4c4")
    _arrow(ax, (9.0, 0.6), (7.8, -0.35), "backward")
    _box(ax, 4.6, -0.4, "mean: $\\alpha_k^c$", w=1.5, color="#f2c4c4")
    _arrow(ax, (6.2, -0.4), (5.4, -0.4))
    _box(ax, 4.6, -1.8, "$\\sum_k \\alpha^c_k A^k$", w=1.5)
    _arrow(ax, (4.6, -0.8), (4.6, -1.4))
    _arrow(ax, (3.8, 0.7), (4.1, -1.45))
    _box(ax, 2.3, -1.8, "ReLU", w=1.0)
    _arrow(ax, (3.8, -1.8), (2.85, -1.8))
    _box(ax, 0.3, -1.8, "upsample", w=1.3)
    _arrow(ax, (1.8, -1.8), (1.0, -1.8))
    ax.text(0.3, -2.45, "map $M^c$", ha="center", fontsize=7)
    return _finish(ax, (-1.0, 10.2), (-2.8, 1.6))


def draw_visual_backprop(ax: Axes, levels: int = 3) -> Axes:
    """VisualBackProp's blocks: channel averages a_l of the ReLU maps, from the deepest
    one up: scale up (all-ones transposed convolution), multiply with the shallower
    average, repeat.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> "$a_3$" in [t.get_text() for t in draw_visual_backprop(ax).texts]
        True
    """
    if levels < 1:
        raise ValueError(f"draw_visual_backprop: levels must be >= 1, got {levels}")
    for l in range(1, levels + 1):
        x = 2.4 * l
        size = 1.3 - 0.25 * l
        _box(ax, x, 1.2, f"ReLU {l}", w=1.2)
        if l > 1:
            _arrow(ax, (x - 1.8, 1.2), (x - 0.6, 1.2))
        ax.add_patch(
            Rectangle(
                (x - size / 2, -0.2 - size / 2),
                size,
                size,
                fc="#f5d7a1",
                ec="0.4",
                lw=0.7,
            )
        )
        ax.text(x, -0.2, f"$a_{l}$", ha="center", va="center", fontsize=7)
        _arrow(ax, (x, 0.85), (x, -0.2 + size / 2 + 0.05), "mean")
    for l in range(levels, 1, -1):
        x = 2.4 * l
        _arrow(ax, (x - 0.5, -1.3), (x - 1.9, -1.3), "deconv, $\\odot$")
    ax.text(2.4, -1.75, "mask $M_1$ -> upsample -> map", ha="center", fontsize=6)
    ax.text(
        2.4 * levels,
        -1.75,
        f"start: $M_{levels} = a_{levels}$",
        ha="center",
        fontsize=6,
    )
    return _finish(ax, (1.0, 2.4 * levels + 1.2), (-2.1, 1.7))


@dataclass(frozen=True)
class Milestone:
    """One method of the book: its year of publication, its original purpose and its
    paper."""

    name: str
    year: int
    purpose: str
    key: str


MILESTONES: tuple[Milestone, ...] = (
    Milestone(
        "gradient explanations",
        2010,
        "explain any classifier's decision",
        "baehrens2010explain",
    ),
    Milestone(
        "deconvnet, occlusion",
        2014,
        "understand and improve CNNs",
        "zeiler2014visualizing",
    ),
    Milestone(
        "gradient saliency",
        2014,
        "class saliency and weak localisation",
        "simonyan2014deep",
    ),
    Milestone(
        "Guided Backprop",
        2015,
        "visualise all-convolutional nets",
        "springenberg2015striving",
    ),
    Milestone("LRP", 2015, "pixel-wise decomposition of a score", "bach2015pixel"),
    Milestone("CAM", 2016, "weakly supervised localisation", "zhou2016cam"),
    Milestone(
        "VisualBackProp",
        2016,
        "fast debugging of steering nets",
        "bojarski2016visualbackprop",
    ),
    Milestone(
        "Grad-CAM, Guided Grad-CAM",
        2017,
        "class maps for any CNN",
        "selvaraju2017gradcam",
    ),
    Milestone(
        "SmoothGrad", 2017, "sharper, less noisy gradient maps", "smilkov2017smoothgrad"
    ),
    Milestone(
        "sanity checks",
        2018,
        "test whether maps depend on the model",
        "adebayo2018sanity",
    ),
)


def bib_years(path: str | Path) -> dict[str, int]:
    """``{key: year}`` of every entry of a BibTeX file with a numeric year.

    Example:
        >>> import tempfile, os
        >>> f = tempfile.NamedTemporaryFile("w", suffix=".bib", delete=False)
        >>> _ = f.write("@article{a2001x,\\n  year = {2001}\\n}\\n"); f.close()
        >>> bib_years(f.name)
        {'a2001x': 2001}
        >>> os.remove(f.name)
    """
    years: dict[str, int] = {}
    for match in re.finditer(
        r"@\w+\{([^,\s]+),(.*?)\n\}", Path(path).read_text(), re.S
    ):
        year = re.search(r"\byear\s*=\s*[{\"]?(\d{4})", match.group(2))
        if year:
            years[match.group(1)] = int(year.group(1))
    return years


def draw_timeline(ax: Axes, milestones: tuple[Milestone, ...] = MILESTONES) -> Axes:
    """The methods on a time axis, each labelled with its original purpose.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> "CAM" in [t.get_text().split(":")[0] for t in draw_timeline(ax).texts]
        True
    """
    if not milestones:
        raise ValueError("draw_timeline: no milestones")
    ordered = sorted(milestones, key=lambda m: (m.year, m.name))
    years = [m.year for m in ordered]
    ax.axhline(0, color="0.3", lw=0.8)
    for i, m in enumerate(ordered):
        y = (i % 5 + 1) * (0.6 if i % 2 == 0 else -0.6)
        ax.plot([m.year, m.year], [0, y], color="0.6", lw=0.6)
        ax.plot(m.year, 0, "o", ms=3, color="0.2")
        ax.text(
            m.year,
            y,
            f"{m.name}: {m.purpose}",
            ha="center",
            va="bottom" if y > 0 else "top",
            fontsize=6,
        )
    ax.set_xlim(min(years) - 1.5, max(years) + 1.5)
    ax.set_ylim(-3.6, 3.6)
    ax.set_yticks([])
    ax.set_xticks(sorted(set(years)))
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return ax
