"""The look-alikes world: distractors exactly as salient as the target."""
from __future__ import annotations

import pytest
import torch

from xaisurvey.data.worlds import LOOKALIKE_CLASSES, lookalikes
from xaisurvey.data.worlds.lookalikes import OBJECT_COLOUR


def test_lookalikes_shapes_labels_and_masks():
    world = lookalikes(30, seed=0)
    assert world.images.shape == (30, 3, 64, 64) and world.images.dtype == torch.float32
    assert world.targets.bincount(minlength=3).tolist() == [10, 10, 10]
    assert world.classes == LOOKALIKE_CLASSES
    assert bool(world.mask_of("target").flatten(1).any(1).all())
    assert bool(world.mask_of("distractor").flatten(1).any(1).all())  # at least two circles each


def test_every_object_has_the_same_colour():
    world = lookalikes(12, seed=1)
    colour = torch.tensor(OBJECT_COLOUR)
    for category in ("target", "distractor"):
        pixels = world.images.permute(0, 2, 3, 1)[world.mask_of(category)]
        assert torch.allclose(pixels, colour.expand_as(pixels))


def test_same_seed_same_world_and_errors():
    a, b = lookalikes(6, seed=3), lookalikes(6, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    with pytest.raises(ValueError, match="distractors"):
        lookalikes(2, distractors=(3, 9))
