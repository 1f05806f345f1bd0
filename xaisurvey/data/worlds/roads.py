"""Road tiles: 96x96 aerial-like views, "road" or "no road", with a mask of the road's
pixels.

The task of the VisualBackProp exercise (Bojarski et al. 2016 trained on satellite
tiles): a classifier says whether a tile shows a road. Every tile has a textured
countryside (grass and field patches, trees); half the tiles have a road (one, sometimes
two crossing, straight or curved, asphalt grey with an optional dashed centre line).
Confounders appear in *both* classes, so the road is the only evidence: grey rooftops
(asphalt-like colour, but compact rectangles) and rivers (long bands, but blue-green).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import WorldSet, check_count, generator_from, paint, smooth_noise, uniform

__all__ = ["road_tiles", "ROAD_CLASSES", "ROAD_CATEGORIES"]

ROAD_CLASSES = ["no road", "road"]
ROAD_CATEGORIES = ["background", "road", "roof", "river"]
SIZE = 96


def _band(
    n: int, g: torch.Generator, yy: Tensor, xx: Tensor, half_width: Tensor
) -> tuple[Tensor, Tensor]:
    """A long curved band across the tile: |distance to a parabola| <= half_width; also
    the centre distance."""
    angle = uniform(n, 0.0, math.pi, g)[:, None, None]
    # The band passes near the centre so it crosses the tile (offset up to a quarter of
    # the side).
    offset = uniform(n, -SIZE / 4, SIZE / 4, g)[:, None, None]
    bend = (
        uniform(n, -1.0, 1.0, g)[:, None, None]
        * (torch.rand(n, generator=g) < 0.5)[:, None, None]
        / 60.0
    )
    cx, cy = xx - SIZE / 2, yy - SIZE / 2
    along = cx * torch.cos(angle) + cy * torch.sin(angle)
    across = -cx * torch.sin(angle) + cy * torch.cos(angle) - offset - bend * along**2
    return across.abs() <= half_width, across


def road_tiles(n: int = 1000, seed: int | torch.Generator = 0) -> WorldSet:
    """Generate ``n`` aerial-like 96x96 RGB tiles, half with a road (label 1) and half
    without (label 0).

    A road is a band of half-width 3-7 px along a line or a parabola
    (``|across - b * along^2| <= w``), sometimes with a second road crossing it.
    Rooftops (grey rectangles) and rivers appear in both classes with the same
    probability, so only the road tells the classes apart.

    Args:
        n: number of tiles; the classes are balanced exactly (``n // 2`` roads when
            ``n`` is even).
        seed: an int or a ``torch.Generator``; the same seed gives the same tiles.

    Returns:
        A :class:`WorldSet`: images (n, 3, 96, 96), targets int64 (0 = no road, 1 =
        road), masks (n, 96, 96) with :data:`ROAD_CATEGORIES` (0 background, 1 road, 2
        roof, 3 river); the road mask is empty exactly when the label is 0.

    Example:
        >>> tiles = road_tiles(8, seed=0)
        >>> tiles.images.shape, tiles.targets.tolist().count(1)
        (torch.Size([8, 3, 96, 96]), 4)
        >>> bool(((tiles.masks == 1).flatten(1).any(1) == tiles.targets.bool()).all())
        True
    """
    check_count(n)
    g = generator_from(seed)
    labels = (torch.arange(n) % 2)[torch.randperm(n, generator=g)]
    yy, xx = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32),
        torch.arange(SIZE, dtype=torch.float32),
        indexing="ij",
    )
    yy, xx = yy.expand(n, -1, -1), xx.expand(n, -1, -1)

    # Countryside: grass with field patches of another hue and dark tree clumps.
    grass = torch.tensor([0.30, 0.45, 0.20]) + uniform((n, 3), -0.05, 0.05, g)
    field_colour = torch.tensor([0.55, 0.50, 0.30]) + uniform((n, 3), -0.08, 0.08, g)
    fields = (smooth_noise(n, SIZE, SIZE, 24, g) > 0.6).float()
    texture = smooth_noise(n, SIZE, SIZE, 4, g) - 0.5
    images = (
        grass[:, :, None, None] * (1 - fields) + field_colour[:, :, None, None] * fields
    )
    # one grain field, reused for the asphalt
    grain = torch.randn(n, 1, SIZE, SIZE, generator=g)
    images = images + 0.12 * texture + 0.03 * grain
    trees = smooth_noise(n, SIZE, SIZE, 6, g)[:, 0] > 0.78
    images = images.clamp(0, 1)
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.int64)
    images, masks = paint(
        images,
        masks,
        trees,
        torch.tensor([0.12, 0.25, 0.10]).expand(n, 3)
        + 0.03 * torch.rand(n, 3, generator=g),
        0,
    )

    # Rivers (either class): a blue-green band.
    has_river = torch.rand(n, generator=g) < 0.3
    river, _ = _band(n, g, yy, xx, uniform(n, 3.0, 6.0, g)[:, None, None])
    river_colour = torch.tensor([0.15, 0.35, 0.55]) + uniform((n, 3), -0.05, 0.05, g)
    images, masks = paint(
        images, masks, river & has_river[:, None, None], river_colour, 3
    )

    # Roads (label 1 only): asphalt grey, one or two, with a dashed centre line on some.
    half_width = uniform(n, 3.0, 7.0, g)[:, None, None]
    road1, across1 = _band(n, g, yy, xx, half_width)
    road2, _ = _band(n, g, yy, xx, half_width)
    second = torch.rand(n, generator=g) < 0.3
    road = (road1 | (road2 & second[:, None, None])) & labels.bool()[:, None, None]
    grey = uniform(n, 0.35, 0.55, g)[:, None].expand(n, 3) + uniform(
        (n, 3), -0.02, 0.02, g
    )
    asphalt = grey[:, :, None, None] + 0.04 * grain.roll(17, dims=-1)
    images, masks = paint(images, masks, road, asphalt.clamp(0, 1), 1)
    dashed = (torch.rand(n, generator=g) < 0.5)[:, None, None]
    along1 = xx + yy  # any coordinate that varies along the road makes the dashes
    centre_line = (
        road1
        & (across1.abs() < 0.8)
        & ((along1 // 6) % 2 == 0)
        & dashed
        & labels.bool()[:, None, None]
    )
    # part of the road: the mask stays 1
    images = torch.where(centre_line[:, None], torch.tensor(0.9), images)

    # Rooftops (either class): compact grey or red rectangles, drawn last (they may sit
    # beside roads).
    n_roofs = torch.randint(0, 4, (n,), generator=g)
    for k in range(3):
        cy, cx = uniform((n, 1, 1), 8, SIZE - 8, g), uniform((n, 1, 1), 8, SIZE - 8, g)
        hy, hx = uniform((n, 1, 1), 3, 7, g), uniform((n, 1, 1), 3, 7, g)
        roof = (
            ((yy - cy).abs() <= hy)
            & ((xx - cx).abs() <= hx)
            & (n_roofs > k)[:, None, None]
        )
        red = torch.rand(n, generator=g) < 0.4
        colour = torch.where(
            red[:, None],
            torch.tensor([0.60, 0.25, 0.20]),
            uniform(n, 0.35, 0.6, g)[:, None].expand(n, 3),
        )
        images, masks = paint(
            images, masks, roof, colour + uniform((n, 3), -0.03, 0.03, g), 2
        )

    seed_value = seed if isinstance(seed, int) else None
    return WorldSet(
        "road tiles",
        images.clamp_(0, 1).float(),
        labels,
        masks,
        list(ROAD_CATEGORIES),
        list(ROAD_CLASSES),
        {"two_roads": second & labels.bool(), "river": has_river, "roofs": n_roofs},
        seed_value,
    )
