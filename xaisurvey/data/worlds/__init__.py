"""Synthetic worlds with pixel-level ground truth: procedural, seeded, generated in
memory (no files).

- :func:`shapes`: a red target shape among distractors on textured backgrounds; class =
  the target's shape; masks target / distractor / background.
- :func:`lookalikes`: one target shape among circles of the same colour and contrast
  (distractors as salient as the target); class = the target's shape.
- :func:`road_tiles`: 96x96 aerial-like tiles, road / no road, with a road mask (the
  VisualBackProp exercise's task).
- :func:`driving_scenes`: 64x128 forward-camera scenes with semantic masks (sky, road,
  lane markings, buildings, trees, vehicles, pedestrians); target = the steering angle
  implied by the road's curvature.
- :func:`terrain_patches`: 32x32 height maps (flat, bumps, walls, holes, slopes)
  labelled traversable by a stated geometric rule (:func:`traversable`); custom probes
  :func:`wall_patch` and :func:`bump_patch`.

Every generator takes ``n`` and ``seed`` (an int or a ``torch.Generator``; the same seed
gives the same tensors) and returns a :class:`WorldSet`: images float32 (N, C, H, W) in
[0, 1], targets, masks (N, H, W) indexing ``categories``, and ``classes`` (``None`` for
regression).

Example:
    >>> from xaisurvey.data.worlds import shapes
    >>> world = shapes(4, seed=0)
    >>> world.categories
    ['background', 'target', 'distractor']
"""

from ._base import WorldSet
from .driving import DRIVING_CATEGORIES, driving_scenes, steering_angle
from .lookalikes import LOOKALIKE_CATEGORIES, LOOKALIKE_CLASSES, lookalikes
from .roads import ROAD_CATEGORIES, ROAD_CLASSES, road_tiles
from .shapes import SHAPE_CATEGORIES, SHAPE_CLASSES, shape_masks, shapes
from .terrain import (
    TERRAIN_CATEGORIES,
    TERRAIN_CLASSES,
    TERRAIN_KINDS,
    bump_patch,
    heights_to_world,
    rule_violations,
    terrain_patches,
    traversable,
    wall_patch,
)

__all__ = [
    "WorldSet",
    "LOOKALIKE_CATEGORIES",
    "LOOKALIKE_CLASSES",
    "lookalikes",
    "DRIVING_CATEGORIES",
    "ROAD_CATEGORIES",
    "ROAD_CLASSES",
    "SHAPE_CATEGORIES",
    "SHAPE_CLASSES",
    "TERRAIN_CATEGORIES",
    "TERRAIN_CLASSES",
    "TERRAIN_KINDS",
    "bump_patch",
    "driving_scenes",
    "heights_to_world",
    "road_tiles",
    "rule_violations",
    "shape_masks",
    "shapes",
    "steering_angle",
    "terrain_patches",
    "traversable",
    "wall_patch",
]
