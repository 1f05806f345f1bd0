"""Look-alikes: a target shape among distractors that are exactly as salient; only class
evidence finds it.

In :func:`~xaisurvey.data.worlds.shapes` the target is the only red object, so any map
that points at the most conspicuous object finds it. Here every object has the *same*
colour (:data:`OBJECT_COLOUR`, a saturated yellow), the same size range and the same
contrast to the grey background; the distractors are all circles, the target is a
square, a triangle or a cross, and the class is the target's shape. A map can only find
the target by following the evidence for its class: an edge detector or a class-blind
map points at a random object.

Example:
    >>> world = lookalikes(6, seed=0)
    >>> world.images.shape, world.classes
    (torch.Size([6, 3, 64, 64]), ['square', 'triangle', 'cross'])
    >>> bool(world.mask_of("target").flatten(1).any(1).all())
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import WorldSet, check_count, generator_from, paint, smooth_noise, uniform
from .shapes import GRID, SIZE, shape_masks

__all__ = ["lookalikes", "LOOKALIKE_CLASSES", "LOOKALIKE_CATEGORIES", "OBJECT_COLOUR"]

LOOKALIKE_CLASSES = ["square", "triangle", "cross"]  # shape_masks kinds 1, 2, 3
LOOKALIKE_CATEGORIES = ["background", "target", "distractor"]
_DISTRACTOR_KIND = 0  # circle
#: The colour of every object (RGB in [0, 1]).
OBJECT_COLOUR = (0.95, 0.8, 0.15)


def lookalikes(
    n: int = 1000,
    seed: int | torch.Generator = 0,
    distractors: tuple[int, int] = (2, 3),
) -> WorldSet:
    """Generate ``n`` 64x64 RGB images: one target shape and ``distractors`` circles,
    all of one colour.

    Each image: a grey value-noise background; every object painted in
    :data:`OBJECT_COLOUR`; radius 7-10 px for every object; objects in distinct cells of
    a 3x3 grid. The label is the target's shape (:data:`LOOKALIKE_CLASSES`).

    Args:
        n: number of images; classes are balanced exactly when ``n`` is a multiple of 3.
        seed: an int or a ``torch.Generator``.
        distractors: the inclusive range of the number of circles (at most 8).

    Returns:
        A :class:`WorldSet` with masks 0 background, 1 target, 2 distractor.
    """
    check_count(n)
    low, high = distractors
    if not 0 <= low <= high <= GRID * GRID - 1:
        raise ValueError(
            f"distractors must be a range within [0, {GRID * GRID - 1}], got"
            f" {distractors!r}"
        )
    g = generator_from(seed)
    labels = (torch.arange(n) % len(LOOKALIKE_CLASSES))[torch.randperm(n, generator=g)]
    grey = uniform((n, 1, 1, 1), 0.35, 0.6, g)
    images = (grey + 0.12 * (smooth_noise(n, SIZE, SIZE, 8, g) - 0.5)).expand(
        n, 3, SIZE, SIZE
    )
    images = (images + 0.02 * torch.randn(n, 3, SIZE, SIZE, generator=g)).clamp(0, 1)
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.int64)
    colour = torch.tensor(OBJECT_COLOUR).expand(n, 3)
    cells = torch.rand(n, GRID * GRID, generator=g).argsort(dim=1)
    cell = SIZE / GRID
    n_distractors = torch.randint(low, high + 1, (n,), generator=g)
    for slot in range(high + 1):  # slot 0 is the target
        row, col = (cells[:, slot] // GRID).float(), (cells[:, slot] % GRID).float()
        radius = uniform(n, 7.0, 10.0, g)
        jitter = (cell / 2 - radius * 0.9).clamp(min=0)
        cx = (col + 0.5) * cell + uniform(n, -1, 1, g) * jitter
        cy = (row + 0.5) * cell + uniform(n, -1, 1, g) * jitter
        kind = labels + 1 if slot == 0 else torch.full((n,), _DISTRACTOR_KIND)
        region = shape_masks(kind, cx, cy, radius, uniform(n, 0, 2 * math.pi, g))
        if slot > 0:
            region &= (n_distractors >= slot)[:, None, None]
        images, masks = paint(images, masks, region, colour, 1 if slot == 0 else 2)
    seed_value = seed if isinstance(seed, int) else None
    return WorldSet(
        "lookalikes",
        images.float().contiguous(),
        labels,
        masks,
        list(LOOKALIKE_CATEGORIES),
        list(LOOKALIKE_CLASSES),
        {"n_distractors": n_distractors},
        seed_value,
    )
