"""Shapes: one red target object among distractors on a textured background; the class
is the target's shape.

The ground truth of *where the evidence is* is exact: the class depends only on the
target's pixels (the red object), never on the distractors (any shape, any colour but
red) nor on the background (low-saturation textures without red). A model that solves
the task must look at the target, so its heat maps can be scored against the target mask
(pointing game, energy share).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import WorldSet, check_count, generator_from, paint, smooth_noise, uniform

__all__ = ["shapes", "shape_masks", "SHAPE_CLASSES", "SHAPE_CATEGORIES"]

SHAPE_CLASSES = ["circle", "square", "triangle", "cross"]
SHAPE_CATEGORIES = ["background", "target", "distractor"]
SIZE = 64
GRID = 3  # objects sit in distinct cells of a 3x3 grid, so they never overlap


def shape_masks(
    kind: Tensor,
    cx: Tensor,
    cy: Tensor,
    radius: Tensor,
    angle: Tensor,
    size: int = SIZE,
) -> Tensor:
    """Boolean (N, size, size) masks of N shapes: ``kind`` indexes
    :data:`SHAPE_CLASSES`.

    In the shape's frame (centre (cx, cy), rotated by ``angle``), with r = ``radius``:
    circle x^2 + y^2 <= r^2; square ``max(|x|, |y|) <= 0.8 r``; equilateral triangle of
    circumradius r (three half-planes at the inradius r/2); cross: two bars of
    half-length r, half-width 0.3 r.
    """
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32) + 0.5,
        torch.arange(size, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    dx, dy = xx - cx[:, None, None], yy - cy[:, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    x, y = cos * dx + sin * dy, -sin * dx + cos * dy
    r = radius[:, None, None]
    circle = x**2 + y**2 <= r**2
    square = torch.maximum(x.abs(), y.abs()) <= 0.8 * r
    triangle = torch.ones_like(circle)
    for k in range(3):  # outward edge normals at -90, 30 and 150 degrees
        phi = -math.pi / 2 + k * 2 * math.pi / 3
        triangle &= x * math.cos(phi) + y * math.sin(phi) <= r / 2
    cross = ((x.abs() <= r) & (y.abs() <= 0.3 * r)) | (
        (y.abs() <= r) & (x.abs() <= 0.3 * r)
    )
    k = kind[:, None, None]
    return torch.where(
        k == 0,
        circle,
        torch.where(k == 1, square, torch.where(k == 2, triangle, cross)),
    )


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """(N,) hue in [0, 1), saturation, value -> (N, 3) RGB."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=1)
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(
        torch.minimum(k, 4 - k), 0, 1
    )


def shapes(
    n: int = 1000,
    seed: int | torch.Generator = 0,
    distractors: tuple[int, int] = (1, 3),
) -> WorldSet:
    """Generate ``n`` 64x64 RGB images: a red target shape among distractors on a
    textured background.

    Each image: a background of low-saturation value noise and stripes; the target (a
    circle, square, triangle or cross, radius 6-9 px, random rotation, saturated red)
    and between ``distractors[0]`` and ``distractors[1]`` distractors (random shapes in
    saturated non-red hues: hue in [0.15, 0.8]), each object in its own cell of a 3x3
    grid with jitter. The label is the target's shape.

    Args:
        n: number of images; classes are balanced exactly when ``n`` is a multiple of 4.
        seed: an int or a ``torch.Generator``.
        distractors: the inclusive range of the number of distractors (at most 8).

    Returns:
        A :class:`WorldSet`: images (n, 3, 64, 64), targets int64 indexing
        :data:`SHAPE_CLASSES`, masks with :data:`SHAPE_CATEGORIES` (0 background, 1
        target, 2 distractor); params ``target_centre`` (n, 2) as (x, y) pixels,
        ``n_distractors``, ``distractor_kinds`` (n, 8; -1 = absent).

    Example:
        >>> world = shapes(8, seed=0)
        >>> world.images.shape, world.targets.bincount().tolist()
        (torch.Size([8, 3, 64, 64]), [2, 2, 2, 2])
        >>> bool(world.mask_of("target").flatten(1).any(1).all())
        True
    """
    check_count(n)
    low, high = distractors
    if not 0 <= low <= high <= GRID * GRID - 1:
        raise ValueError(
            f"distractors must be a range within [0, {GRID * GRID - 1}], got"
            f" {distractors!r}"
        )
    g = generator_from(seed)
    labels = (torch.arange(n) % len(SHAPE_CLASSES))[torch.randperm(n, generator=g)]

    # Background: two low-saturation colours mixed by value noise, plus faint stripes.
    grey = uniform((n, 1), 0.35, 0.65, g)
    tint_a = grey + uniform((n, 3), -0.06, 0.06, g)
    tint_b = grey + uniform((n, 3), -0.06, 0.06, g) - 0.15
    mix = smooth_noise(n, SIZE, SIZE, 8, g)
    yy, xx = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32),
        torch.arange(SIZE, dtype=torch.float32),
        indexing="ij",
    )
    stripe_angle, stripe_freq = uniform((n, 1, 1), 0, math.pi, g), uniform(
        (n, 1, 1), 0.3, 0.8, g
    )
    stripes = torch.sin(
        stripe_freq * (xx * torch.cos(stripe_angle) + yy * torch.sin(stripe_angle))
    )[:, None]
    images = (
        tint_a[:, :, None, None] * mix
        + tint_b[:, :, None, None] * (1 - mix)
        + 0.04 * stripes
    )
    images = (images + 0.03 * torch.randn(n, 1, SIZE, SIZE, generator=g)).clamp(0, 1)
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.int64)

    # a random distinct cell per object
    cells = torch.rand(n, GRID * GRID, generator=g).argsort(dim=1)
    cell = SIZE / GRID
    n_distractors = torch.randint(low, high + 1, (n,), generator=g)
    distractor_kinds = torch.full((n, GRID * GRID - 1), -1, dtype=torch.int64)
    centres = torch.zeros(n, 2)
    for slot in range(high + 1):  # slot 0 is the target
        row, col = (cells[:, slot] // GRID).float(), (cells[:, slot] % GRID).float()
        radius = uniform(n, 6.0, 9.0, g)
        jitter = cell / 2 - radius * 0.9
        cx = (col + 0.5) * cell + uniform(n, -1, 1, g) * jitter.clamp(min=0)
        cy = (row + 0.5) * cell + uniform(n, -1, 1, g) * jitter.clamp(min=0)
        kind = (
            labels
            if slot == 0
            else torch.randint(0, len(SHAPE_CLASSES), (n,), generator=g)
        )
        region = shape_masks(kind, cx, cy, radius, uniform(n, 0, 2 * math.pi, g))
        if slot == 0:
            hue = uniform(n, -0.03, 0.03, g) % 1.0  # red
            centres = torch.stack([cx, cy], dim=1)
        else:
            hue = uniform(n, 0.15, 0.8, g)  # anything but red
            present = n_distractors >= slot
            region &= present[:, None, None]
            distractor_kinds[:, slot - 1] = torch.where(present, kind, -1)
        colour = _hsv_to_rgb(hue, uniform(n, 0.75, 1.0, g), uniform(n, 0.75, 1.0, g))
        images, masks = paint(images, masks, region, colour, 1 if slot == 0 else 2)

    seed_value = seed if isinstance(seed, int) else None
    return WorldSet(
        "shapes",
        images.float(),
        labels,
        masks,
        list(SHAPE_CATEGORIES),
        list(SHAPE_CLASSES),
        {
            "target_centre": centres,
            "n_distractors": n_distractors,
            "distractor_kinds": distractor_kinds,
        },
        seed_value,
    )
