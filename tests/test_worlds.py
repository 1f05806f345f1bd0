"""The synthetic worlds: determinism, ranges, class balance, masks consistent with images and labels,
and the terrain rule checked on hand-built height maps."""
from __future__ import annotations

import math

import pytest
import torch

from xaisurvey.data import worlds
from xaisurvey.data.worlds import terrain as T
from xaisurvey.data.worlds.shapes import shape_masks

GENERATORS = {
    "shapes": (worlds.shapes, 3, (64, 64)),
    "roads": (worlds.road_tiles, 3, (96, 96)),
    "driving": (worlds.driving_scenes, 3, (64, 128)),
    "terrain": (worlds.terrain_patches, 1, (32, 32)),
}


@pytest.fixture(scope="module")
def samples():
    return {name: gen(40, seed=3) for name, (gen, _, _) in GENERATORS.items()}


@pytest.mark.parametrize("name", GENERATORS)
def test_determinism_and_format(name, samples):
    gen, channels, size = GENERATORS[name]
    world = samples[name]
    again = gen(40, seed=3)
    assert torch.equal(world.images, again.images) and torch.equal(world.targets, again.targets)
    assert torch.equal(world.masks, again.masks)
    other = gen(40, seed=4)
    assert not torch.equal(world.images, other.images)
    # A torch.Generator works as the seed too, and gives the same as the int it was seeded with.
    assert torch.equal(gen(40, seed=torch.Generator().manual_seed(3)).images, world.images)
    assert world.images.shape == (40, channels, *size) and world.images.dtype == torch.float32
    assert float(world.images.min()) >= 0.0 and float(world.images.max()) <= 1.0
    assert world.masks.dtype == torch.int64 and world.masks.shape == (40, *size)
    assert int(world.masks.min()) >= 0 and int(world.masks.max()) < len(world.categories)
    image, target = world[0]
    assert image.shape == (channels, *size) and target.shape == ()


@pytest.mark.parametrize("name", ["shapes", "roads", "terrain"])
def test_classes_balanced(name, samples):
    world = samples[name]
    counts = torch.bincount(world.targets, minlength=len(world.classes))
    assert counts.tolist() == [40 // len(world.classes)] * len(world.classes)


@pytest.mark.parametrize("gen", [worlds.shapes, worlds.road_tiles, worlds.driving_scenes, worlds.terrain_patches])
@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_count_is_a_clear_error(gen, bad):
    with pytest.raises(ValueError, match="n must be a positive int"):
        gen(bad)


def test_bad_seed_is_a_clear_error():
    with pytest.raises(ValueError, match="seed"):
        worlds.shapes(4, seed=-1)


def test_road_mask_present_exactly_on_road_tiles_and_grey(samples):
    world = samples["roads"]
    road = world.mask_of("road")
    assert torch.equal(road.flatten(1).any(1), world.targets.bool())
    # Asphalt is grey: the channels of road pixels differ little (grass, rivers and red roofs do not).
    pixels = world.images.permute(0, 2, 3, 1)[road]
    assert float((pixels.max(1).values - pixels.min(1).values).mean()) < 0.08
    grass = world.images.permute(0, 2, 3, 1)[world.masks == 0]
    assert float((grass.max(1).values - grass.min(1).values).mean()) > 0.1


def test_shapes_target_is_red_and_distractors_are_not(samples):
    world = samples["shapes"]
    pixels = world.images.permute(0, 2, 3, 1)
    target, distractor = pixels[world.mask_of("target")], pixels[world.mask_of("distractor")]
    assert bool((target[:, 0] > target[:, 1:].max(1).values + 0.3).all())
    # Every distractor pixel has another channel at least as bright as a third of its red: never pure red.
    assert bool((distractor[:, 1:].max(1).values > 0.3 * distractor[:, 0]).all())
    assert bool(world.mask_of("target").flatten(1).any(1).all())
    n_distractor_pixels = world.mask_of("distractor").flatten(1).sum(1)
    assert torch.equal(n_distractor_pixels > 0, world.params["n_distractors"] > 0)
    # The target's recorded centre lies on the target.
    centre = world.params["target_centre"].long()
    on_target = world.mask_of("target")[torch.arange(40), centre[:, 1], centre[:, 0]]
    assert float(on_target.float().mean()) > 0.9  # a cross's centre is on it; rounding may miss by a pixel


def test_shape_masks_areas_match_geometry():
    # Large shapes on a big canvas: the pixel areas approach the exact areas.
    r = torch.full((4,), 40.0)
    masks = shape_masks(torch.arange(4), torch.full((4,), 100.0), torch.full((4,), 100.0), r, torch.zeros(4), size=200)
    areas = masks.flatten(1).sum(1).float()
    exact = torch.tensor([math.pi * 40**2, (1.6 * 40) ** 2, 3 * math.sqrt(3) / 4 * 40**2,
                          2 * (2 * 40 * 0.6 * 40) - (0.6 * 40) ** 2])
    assert torch.allclose(areas, exact, rtol=0.03)


def test_driving_geometry_sky_road_and_steering(samples):
    world = samples["driving"]
    rows = torch.arange(64).float()[None, :, None] + 0.5
    horizon = world.params["horizon"][:, None, None]
    assert not bool((world.mask_of("road") & (rows <= horizon)).any())
    assert not bool((world.mask_of("sky") & (rows > horizon + 0.5)).any())
    assert torch.allclose(world.targets, worlds.steering_angle(world.params["curvature"]))
    assert torch.equal(torch.sign(world.targets), torch.sign(world.params["curvature"]))
    # The road bends the way the steering says: far road pixels sit right of near ones for right turns.
    road = world.mask_of("road").float()
    cols = torch.arange(128).float()
    def mean_col(band):
        weights = road[:, band].sum(1)
        return (weights * cols).sum(1) / weights.sum(1).clamp(min=1)
    far = mean_col(slice(int(horizon.max()) + 2, int(horizon.max()) + 8))
    near = mean_col(slice(56, 64))
    shift = far - near
    corr = torch.corrcoef(torch.stack([shift, world.targets]))[0, 1]
    assert float(corr) > 0.8
    # Every category name is used somewhere in 40 scenes.
    assert set(torch.unique(world.masks).tolist()) == set(range(len(worlds.DRIVING_CATEGORIES)))


def test_terrain_labels_follow_the_rule(samples):
    world = samples["terrain"]
    assert torch.equal(world.targets, T.traversable(world.params["heights"]))
    assert torch.equal(world.targets == 0, world.params["violations"].flatten(1).any(1))
    assert torch.allclose(world.images[:, 0], (0.5 + world.params["heights"]).clamp(0, 1))


def test_terrain_rule_on_hand_built_maps():
    flat = torch.zeros(1, T.SIZE, T.SIZE)
    assert T.traversable(flat).tolist() == [1]
    # A step of 9 cm: rise 0.09 <= 0.10 everywhere, traversable; 11 cm is not.
    low, high = flat.clone(), flat.clone()
    low[:, :, 16:], high[:, :, 16:] = 0.09, 0.11
    assert T.traversable(torch.cat([low, high])).tolist() == [1, 0]
    # A 14 cm drop is fine, a 16 cm drop is not (MAX_DROP = 0.15).
    assert T.traversable(torch.cat([-low / 0.09 * 0.14, -low / 0.09 * 0.16])).tolist() == [1, 0]
    # A ramp: rise per wheelbase = grade * 0.30 m; grade 0.3 -> 0.09 (ok), grade 0.4 -> 0.12 (too steep).
    x = torch.arange(T.SIZE).float() * T.CELL
    ramps = torch.stack([0.3 * x, 0.4 * x]).unsqueeze(1).expand(2, T.SIZE, T.SIZE)
    assert T.traversable(ramps).tolist() == [1, 0]
    # A tall wall off the robot's band (rows 0-3) does not matter.
    off_path = flat.clone()
    off_path[:, :4, 10:12] = 0.4
    assert T.traversable(off_path).tolist() == [1]
    with pytest.raises(ValueError, match="heights must be"):
        T.traversable(torch.zeros(T.SIZE, T.SIZE))


def test_custom_wall_and_bump_patches():
    heights = torch.tensor([0.02, 0.05, 0.09, 0.11, 0.2, 0.4])
    for distance in (0.3, 0.8, 1.3):  # by the rule the distance never matters
        walls = worlds.wall_patch(heights, distance)
        assert walls.targets.tolist() == [1, 1, 1, 0, 0, 0]
        wall_cells = walls.mask_of("wall")
        assert torch.allclose(walls.params["heights"][wall_cells].unique(), heights)
    narrow = worlds.wall_patch(0.3, 0.8, width=0.1)  # 10 cm long: still on the path
    assert narrow.targets.tolist() == [0]
    # Bumps of 15 cm: steep when narrow, gentle when wide; the label flips once as the radius grows.
    radii = torch.linspace(0.05, 1.0, 20)
    labels = worlds.bump_patch(radii, height=0.15).targets
    flips = (labels[1:] != labels[:-1]).sum()
    assert labels[0] == 0 and labels[-1] == 1 and int(flips) == 1
    with pytest.raises(ValueError, match="distance"):
        worlds.wall_patch(0.1, 5.0)
    with pytest.raises(ValueError, match="radius"):
        worlds.bump_patch(0.0)


def test_terrain_unbalanced_mix_covers_every_kind():
    world = worlds.terrain_patches(200, seed=0, balanced=False)
    assert set(world.params["kind"].tolist()) == set(range(len(worlds.TERRAIN_KINDS)))
    flat = world.params["kind"] == 0
    assert bool((world.targets[flat] == 1).all())  # 4 cm roughness never breaks the rule


def test_worldset_helpers(samples):
    world = samples["shapes"]
    part = world.subset(slice(0, 5))
    assert len(part) == 5 and torch.equal(part.images, world.images[:5])
    assert part.params["target_centre"].shape == (5, 2)
    with pytest.raises(KeyError, match="no category"):
        world.mask_of("sky")
    with pytest.raises(AttributeError, match="regression"):
        samples["driving"].labels
