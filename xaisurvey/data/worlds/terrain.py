"""Terrain height-map patches for a ground robot (the quarry chapter): flat ground,
bumps, walls, holes and slopes, labelled traversable or not by a stated geometric rule.

A patch is ``SIZE`` x ``SIZE`` cells of ``CELL`` metres (32 x 5 cm = 1.6 m square). The
robot enters at the left edge and must cross to the right edge, driving along +x; its
body covers the ``ROBOT_ROWS`` central rows (``ROBOT_WIDTH`` = 0.4 m).

**The traversability rule** (the ground truth). Let ``h[r, c]`` be the heights (metres)
and ``k = WHEELBASE / CELL`` (6 cells). The patch is *traversable* if and only if, on
every row r of the robot's band and every column c, the rise over one wheelbase along
the direction of travel, ``h[r, c + k] - h[r, c]``, is at most ``MAX_RISE`` (0.10 m:
steeper climbs stall the robot, about 18 degrees) and at least ``-MAX_DROP`` (0.15 m:
deeper drops tip it). Everything outside the band is irrelevant, and so is *where* along
the path an obstacle is.

The image of a patch is ``clamp(0.5 + h / (2 * HEIGHT_RANGE), 0,
1)`` with ``HEIGHT_RANGE`` = 0.5 m (0.5 is ground level); the heights themselves are in
``params["heights"]``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ._base import WorldSet, check_count, generator_from, uniform

__all__ = [
    "terrain_patches",
    "traversable",
    "rule_violations",
    "wall_patch",
    "bump_patch",
    "heights_to_world",
    "TERRAIN_CLASSES",
    "TERRAIN_CATEGORIES",
    "TERRAIN_KINDS",
    "SIZE",
    "CELL",
    "WHEELBASE",
    "MAX_RISE",
    "MAX_DROP",
    "ROBOT_ROWS",
    "HEIGHT_RANGE",
]

TERRAIN_CLASSES = ["not traversable", "traversable"]
TERRAIN_CATEGORIES = ["ground", "bump", "wall", "hole"]
TERRAIN_KINDS = ["flat", "bumps", "wall", "hole", "slope"]
SIZE = 32
CELL = 0.05  # metres per cell
WHEELBASE = 0.30  # metres: the rule's rise is measured over this distance
STEP = round(WHEELBASE / CELL)
MAX_RISE, MAX_DROP = 0.10, 0.15  # metres over one wheelbase
ROBOT_WIDTH = 0.40
ROBOT_ROWS = slice(
    SIZE // 2 - round(ROBOT_WIDTH / CELL / 2), SIZE // 2 + round(ROBOT_WIDTH / CELL / 2)
)
HEIGHT_RANGE = 0.5


def rule_violations(heights: Tensor) -> Tensor:
    """Boolean (N, S, S): the cells where the traversability rule fails (both ends of
    each failing wheelbase).

    Example:
        >>> # a 20 cm step up across the path
        >>> h = torch.zeros(1, SIZE, SIZE); h[:, :, 20:] = 0.2
        >>> # row 0 is off the path
        >>> bool(rule_violations(h).any()), bool(rule_violations(h)[0, 0].any())
        (True, False)
    """
    rise = heights[:, :, STEP:] - heights[:, :, :-STEP]  # (N, S, S - k)
    bad = (rise > MAX_RISE) | (rise < -MAX_DROP)
    band = torch.zeros_like(bad)
    band[:, ROBOT_ROWS] = True
    bad &= band
    cells = torch.zeros_like(heights, dtype=torch.bool)
    cells[:, :, :-STEP] |= bad
    cells[:, :, STEP:] |= bad
    return cells


def traversable(heights: Tensor) -> Tensor:
    """The rule of this module: int64 (N,), 1 when no wheelbase on the robot's band
    rises more than ``MAX_RISE`` or drops more than ``MAX_DROP``; ``heights`` is
    (N, S, S) in metres.

    Example:
        >>> traversable(torch.zeros(2, SIZE, SIZE)).tolist()
        [1, 1]
    """
    if heights.ndim != 3:
        raise ValueError(
            f"heights must be (N, S, S) in metres, got shape {tuple(heights.shape)}"
        )
    return (~rule_violations(heights).flatten(1).any(1)).long()


def heights_to_world(
    heights: Tensor,
    categories: Tensor,
    kinds: Tensor | None = None,
    seed: int | None = None,
    name: str = "terrain patches",
) -> WorldSet:
    """Wrap height maps (N, S, S) and their per-cell categories in a :class:`WorldSet`,
    labelled by :func:`traversable`."""
    images = (0.5 + heights / (2 * HEIGHT_RANGE)).clamp(0, 1)[:, None].float()
    params = {"heights": heights.float(), "violations": rule_violations(heights)}
    if kinds is not None:
        params["kind"] = kinds
    return WorldSet(
        name,
        images,
        traversable(heights),
        categories,
        list(TERRAIN_CATEGORIES),
        list(TERRAIN_CLASSES),
        params,
        seed,
    )


def _grid(n: int) -> tuple[Tensor, Tensor]:
    ys, xs = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32),
        torch.arange(SIZE, dtype=torch.float32),
        indexing="ij",
    )
    return (ys * CELL).expand(n, -1, -1), (xs * CELL).expand(n, -1, -1)


def _roughness(n: int, g: torch.Generator, amplitude: Tensor) -> Tensor:
    coarse = torch.rand(n, 1, SIZE // 4 + 1, SIZE // 4 + 1, generator=g) - 0.5
    smooth = torch.nn.functional.interpolate(
        coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=True
    )[:, 0]
    return smooth * amplitude[:, None, None]


def _candidates(n: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` random patches: heights (n, S, S), categories (n, S, S), kind index
    (n,)."""
    ys, xs = _grid(n)
    kind = torch.randint(0, len(TERRAIN_KINDS), (n,), generator=g)
    heights = _roughness(n, g, uniform(n, 0.0, 0.04, g))
    categories = torch.zeros(n, SIZE, SIZE, dtype=torch.int64)
    side = SIZE * CELL

    # Bumps: 1-3 Gaussian mounds anywhere; steep when high and narrow.
    bumps = torch.zeros_like(heights)
    for k in range(3):
        on = ((kind == 1) & (torch.randint(0, 3, (n,), generator=g) >= k))[
            :, None, None
        ]
        cy, cx = uniform((n, 1, 1), 0, side, g), uniform((n, 1, 1), 0, side, g)
        radius, height = uniform((n, 1, 1), 0.08, 0.4, g), uniform(
            (n, 1, 1), 0.03, 0.35, g
        )
        bump = (
            height
            * torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * (radius / 2) ** 2))
            * on
        )
        bumps = torch.maximum(bumps, bump)
    heights = heights + bumps
    categories = torch.where(bumps > 0.02, 1, categories)

    # Walls: a block across (part of) the patch at some distance, any height.
    dist, thickness = uniform((n, 1, 1), 0.3, side - 0.3, g), uniform(
        (n, 1, 1), 0.05, 0.3, g
    )
    start, length = uniform((n, 1, 1), -0.4, side * 0.7, g), uniform(
        (n, 1, 1), 0.3, side * 1.2, g
    )
    wall_height = uniform((n, 1, 1), 0.02, 0.4, g)
    wall = (
        (kind == 2)[:, None, None]
        & (xs >= dist)
        & (xs < dist + thickness)
        & (ys >= start)
        & (ys < start + length)
    )
    heights = heights + wall * wall_height
    categories = torch.where(wall, 2, categories)

    # Holes: a round pit with vertical or sloped sides.
    cy, cx = uniform((n, 1, 1), 0.2, side - 0.2, g), uniform(
        (n, 1, 1), 0.3, side - 0.3, g
    )
    radius, depth = uniform((n, 1, 1), 0.1, 0.4, g), uniform((n, 1, 1), 0.03, 0.4, g)
    r = torch.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
    wall_width = uniform((n, 1, 1), 0.0, 0.3, g)  # 0 = vertical sides
    pit = (
        depth
        * ((radius - r) / wall_width.clamp(min=1e-3)).clamp(0, 1)
        * (kind == 3)[:, None, None]
    )
    heights = heights - pit
    categories = torch.where(pit > 0.02, 3, categories)

    # Slopes: a plane rising or falling along the direction of travel (and a little
    # sideways).
    grade = uniform((n, 1, 1), -0.8, 0.8, g) * (kind == 4)[:, None, None]
    sideways = uniform((n, 1, 1), -0.2, 0.2, g) * (kind == 4)[:, None, None]
    heights = heights + grade * (xs - side / 2) + sideways * (ys - side / 2)
    return heights, categories, kind


def terrain_patches(
    n: int = 1000, seed: int | torch.Generator = 0, balanced: bool = True
) -> WorldSet:
    """Generate ``n`` height-map patches (flat, bumps, walls, holes, slopes) labelled by
    :func:`traversable`.

    Candidates are drawn with equally likely kinds; with ``balanced`` the set keeps the
    first ``n // 2`` traversable and ``n - n // 2`` non-traversable ones in generation
    order (drawing more candidates as needed), so both classes are equally common.

    Args:
        n: number of patches.
        seed: an int or a ``torch.Generator``.
        balanced: balance the two classes (otherwise keep the natural mix of the
            candidates).

    Returns:
        A :class:`WorldSet`: images (n, 1, 32, 32) (heights mapped to [0, 1], ground
        level 0.5), targets int64 (1 = traversable), masks with
        :data:`TERRAIN_CATEGORIES`, params ``heights`` (metres), ``violations`` (cells
        where the rule fails), ``kind`` (index into :data:`TERRAIN_KINDS`).

    Example:
        >>> patches = terrain_patches(10, seed=0)
        >>> patches.images.shape, patches.targets.tolist().count(1)
        (torch.Size([10, 1, 32, 32]), 5)
        >>> bool((traversable(patches.params["heights"]) == patches.targets).all())
        True
    """
    check_count(n)
    g = generator_from(seed)
    if not balanced:
        heights, categories, kinds = _candidates(n, g)
        return heights_to_world(
            heights, categories, kinds, seed if isinstance(seed, int) else None
        )
    want = {1: n // 2, 0: n - n // 2}
    kept: list[tuple[Tensor, Tensor, Tensor]] = []
    have = {0: 0, 1: 0}
    while have[0] < want[0] or have[1] < want[1]:
        heights, categories, kinds = _candidates(max(64, n), g)
        labels = traversable(heights)
        keep = torch.zeros_like(labels, dtype=torch.bool)
        for label in (0, 1):
            idx = (labels == label).nonzero()[:, 0][: want[label] - have[label]]
            keep[idx] = True
            have[label] += len(idx)
        kept.append((heights[keep], categories[keep], kinds[keep]))
    heights, categories, kinds = (torch.cat(parts) for parts in zip(*kept))
    return heights_to_world(
        heights, categories, kinds, seed if isinstance(seed, int) else None
    )


def _as_floats(values: float | Sequence[float] | Tensor) -> Tensor:
    return torch.as_tensor(values, dtype=torch.float32).reshape(-1)


def wall_patch(
    height: float | Sequence[float] | Tensor,
    distance: float | Sequence[float] | Tensor,
    thickness: float = 0.1,
    width: float | None = None,
) -> WorldSet:
    """Custom patches: flat ground with a wall of ``height`` (m) at ``distance`` (m)
    from the left edge.

    The wall runs across the direction of travel, ``thickness`` metres deep, ``width``
    metres long centred on the path (``None``: the whole patch). ``height`` and
    ``distance`` broadcast, so ``wall_patch([0.05, 0.2], 0.8)`` gives two patches. By
    the rule, a full-width wall is traversable iff its height is at most ``MAX_RISE``,
    whatever its distance.

    Example:
        >>> wall_patch([0.05, 0.2], 0.8).targets.tolist()
        [1, 0]
    """
    h, d = torch.broadcast_tensors(_as_floats(height), _as_floats(distance))
    n = h.numel()
    if (d < 0).any() or (d > SIZE * CELL).any():
        raise ValueError(f"distance must be within the patch, [0, {SIZE * CELL}] m")
    ys, xs = _grid(n)
    across = (
        torch.ones_like(ys, dtype=torch.bool)
        if width is None
        else (ys - SIZE * CELL / 2).abs() <= width / 2
    )
    wall = (xs >= d[:, None, None]) & (xs < d[:, None, None] + thickness) & across
    heights = wall * h[:, None, None]
    categories = torch.where(wall & (h[:, None, None] != 0), 2, 0)
    return heights_to_world(
        heights, categories, torch.full((n,), 2), name="wall patches"
    )


def bump_patch(
    radius: float | Sequence[float] | Tensor,
    height: float | Sequence[float] | Tensor = 0.15,
    distance: float | Sequence[float] | Tensor = 0.8,
) -> WorldSet:
    """Custom patches: flat ground with one Gaussian bump of ``radius`` (m, twice its
    standard deviation) and ``height`` (m) on the robot's path, centred ``distance``
    metres from the left edge.

    The bump's steepest rise over one wheelbase grows with height / radius, so a low
    wide bump is traversable and a high narrow one is not.

    Example:
        >>> bump_patch([0.1, 0.8], height=0.15).targets.tolist()
        [0, 1]
    """
    r, h, d = torch.broadcast_tensors(
        _as_floats(radius), _as_floats(height), _as_floats(distance)
    )
    if (r <= 0).any():
        raise ValueError("radius must be positive")
    n = r.numel()
    ys, xs = _grid(n)
    centre_y = SIZE * CELL / 2
    heights = h[:, None, None] * torch.exp(
        -((ys - centre_y) ** 2 + (xs - d[:, None, None]) ** 2)
        / (2 * (r[:, None, None] / 2) ** 2)
    )
    categories = torch.where(heights > 0.02, 1, 0)
    return heights_to_world(
        heights, categories, torch.full((n,), 1), name="bump patches"
    )
