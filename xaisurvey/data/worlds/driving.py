"""Driving scenes from a forward camera: a curved road with lane markings, sky, terrain,
buildings, trees, vehicles and pedestrians; a semantic mask per category; the target is
the steering angle implied by the road's curvature (the setting of the GradSUM talk and
of PilotNet).

Geometry (a pinhole camera at height ``CAMERA_HEIGHT`` above flat ground, focal length
``FOCAL`` pixels, horizon at row ``h0``): an image row y below the horizon sees the
ground at depth ``z = CAMERA_HEIGHT * FOCAL / (y - h0)``. The road's centre line is a
circular arc of curvature kappa (1/m), to second order
``x_c(z) = offset + kappa z^2 / 2``, projected to column ``u = W/2 + FOCAL * (x_c(z) -
camera_x) / z``. The steering angle that follows the arc is the bicycle model's
``delta = atan(WHEELBASE * kappa)``, in degrees (positive = turn right).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import WorldSet, check_count, generator_from, paint, smooth_noise, uniform

__all__ = [
    "driving_scenes",
    "steering_angle",
    "DRIVING_CATEGORIES",
    "CAMERA_HEIGHT",
    "FOCAL",
    "WHEELBASE",
]

DRIVING_CATEGORIES = [
    "terrain",
    "sky",
    "road",
    "lane_marking",
    "building",
    "tree",
    "vehicle",
    "pedestrian",
]
HEIGHT, WIDTH = 64, 128
CAMERA_HEIGHT = 1.5  # metres
FOCAL = 64.0  # pixels (a 90-degree horizontal field of view at 128 px)
WHEELBASE = 2.7  # metres
MAX_CURVATURE = 0.04  # 1/m: a 25 m radius, 6.2 degrees of steering


def steering_angle(curvature: Tensor) -> Tensor:
    """The bicycle model's steering angle (degrees) for a path of ``curvature`` (1/m):
    atan(L kappa).

    Example:
        >>> round(float(steering_angle(torch.tensor(0.04))), 2)
        6.16
    """
    return torch.rad2deg(torch.atan(WHEELBASE * curvature))


def driving_scenes(n: int = 1000, seed: int | torch.Generator = 0) -> WorldSet:
    """Generate ``n`` 64x128 RGB forward-camera scenes with semantic masks and steering
    targets.

    Per scene: curvature kappa uniform in [-0.04, 0.04] 1/m, the car's lateral offset in
    its lane and the horizon row jittered; road 7 m wide (two lanes, dashed centre line,
    solid edges); buildings on the horizon, trees and pedestrians beside the road, 0-2
    vehicles on the road, placed by the same projection (so they shrink with depth).
    Objects are painted far to near.

    Args:
        n: number of scenes.
        seed: an int or a ``torch.Generator``.

    Returns:
        A :class:`WorldSet` (regression: ``classes`` is ``None``): images
        (n, 3, 64, 128), targets float32 steering angles in degrees
        (:func:`steering_angle` of the curvature), masks indexing
        :data:`DRIVING_CATEGORIES`; params ``curvature`` (1/m), ``offset`` (m),
        ``horizon`` (row).

    Example:
        >>> scenes = driving_scenes(4, seed=0)
        >>> scenes.images.shape, scenes.targets.dtype
        (torch.Size([4, 3, 64, 128]), torch.float32)
        >>> bool((scenes.mask_of("sky").flatten(1).any(1)).all())
        True
    """
    check_count(n)
    g = generator_from(seed)
    curvature = uniform(n, -MAX_CURVATURE, MAX_CURVATURE, g)
    # the car's offset from its lane centre (m); the lane is at x = +1.75
    offset = uniform(n, -0.6, 0.6, g)
    horizon = uniform(n, 18.0, 24.0, g)
    yy, xx = torch.meshgrid(
        torch.arange(HEIGHT, dtype=torch.float32) + 0.5,
        torch.arange(WIDTH, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    h0 = horizon[:, None, None]
    below = yy > h0 + 0.5
    depth = torch.where(
        below, CAMERA_HEIGHT * FOCAL / (yy - h0).clamp(min=0.5), torch.tensor(1e4)
    )
    # driving in the right lane of a road centred at x = 0
    camera_x = 1.75 + offset[:, None, None]
    # Ground coordinate of each pixel: lateral x (m) at its depth.
    ground_x = camera_x + (xx - WIDTH / 2) * depth / FOCAL
    # lateral distance to the road's centre line
    across = ground_x - curvature[:, None, None] * depth**2 / 2

    noise = smooth_noise(n, HEIGHT, WIDTH, 4, g) - 0.5
    grass = torch.tensor([0.35, 0.50, 0.25]) + uniform((n, 3), -0.06, 0.06, g)
    images = grass[:, :, None, None] + 0.15 * noise
    masks = torch.zeros(n, HEIGHT, WIDTH, dtype=torch.int64)
    sky_top, sky_bottom = torch.tensor([0.35, 0.55, 0.85]), torch.tensor(
        [0.75, 0.85, 0.95]
    )
    t = (yy / h0).clamp(0, 1)[:, None]
    sky = (
        sky_top[None, :, None, None] * (1 - t)
        + sky_bottom[None, :, None, None] * t
        + 0.05 * noise
    )
    images, masks = paint(images, masks, ~below, sky, 1)

    # Buildings on the horizon (far away, drawn first among the objects).
    for _ in range(4):
        present = torch.rand(n, generator=g) < 0.6
        left = uniform((n, 1, 1), 0, WIDTH, g)
        width = uniform((n, 1, 1), 8, 22, g)
        top = h0 - uniform((n, 1, 1), 4, 14, g)
        region = (
            (xx >= left)
            & (xx < left + width)
            & (yy >= top)
            & (yy <= h0 + 1.5)
            & present[:, None, None]
        )
        colour = uniform((n, 1), 0.4, 0.7, g) + torch.tensor(
            [[0.05, 0.0, -0.05]]
        ) * uniform((n, 1), -1, 2, g)
        images, masks = paint(images, masks, region, colour, 4)

    road = below & (across.abs() <= 3.5) & (depth < 150)
    asphalt = (
        uniform((n, 1), 0.30, 0.45, g).expand(n, 3)[:, :, None, None] + 0.06 * noise
    )
    images, masks = paint(images, masks, road, asphalt, 2)
    # widen with depth so far markings stay at least a pixel wide
    line_half = 0.08 + 0.004 * depth
    dashes = ((depth + uniform((n, 1, 1), 0, 6, g)) % 6.0) < 3.0
    marking = road & (
        ((across.abs() < line_half) & dashes) | ((across.abs() - 3.3).abs() < line_half)
    )
    images, masks = paint(images, masks, marking, torch.full((n, 3), 0.95), 3)

    # Objects standing on the ground at depth z, lateral x: bottom row h0 + H f / z,
    # size ~ f / z.
    def standing(
        x: Tensor, z: Tensor, width_m: float, height_m: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        centre_x = x + curvature * z**2 / 2  # positions follow the road's bend
        u = WIDTH / 2 + FOCAL * (centre_x - camera_x[:, 0, 0]) / z
        bottom = horizon + CAMERA_HEIGHT * FOCAL / z
        half_w, tall = FOCAL * width_m / z / 2, FOCAL * height_m / z
        box = (
            ((xx - u[:, None, None]).abs() <= half_w[:, None, None].clamp(min=0.6))
            & (yy <= bottom[:, None, None])
            & (yy >= (bottom - tall)[:, None, None])
        )
        return box, u, bottom

    # Each category is drawn far to near (a full depth sort across categories is not
    # worth it here).
    for side in (-1.0, 1.0):  # trees beside the road
        tree_depths = uniform((n, 2), 12.0, 60.0, g).sort(dim=1, descending=True).values
        for k in range(2):
            zt = tree_depths[:, k]
            present = torch.rand(n, generator=g) < 0.5
            x = side * uniform(n, 5.5, 9.0, g)
            trunk, u, bottom = standing(x, zt, 0.4, 2.0)
            crown_r = FOCAL * 1.6 / zt
            crown_y = bottom - FOCAL * 3.0 / zt
            crown = (xx - u[:, None, None]) ** 2 + (
                yy - crown_y[:, None, None]
            ) ** 2 <= (crown_r**2)[:, None, None]
            tree_colour = torch.tensor([0.10, 0.32, 0.12]) + uniform(
                (n, 3), -0.04, 0.04, g
            )
            images, masks = paint(
                images,
                masks,
                (trunk & present[:, None, None]),
                torch.tensor([0.35, 0.22, 0.1]).expand(n, 3),
                5,
            )
            images, masks = paint(
                images, masks, crown & present[:, None, None], tree_colour, 5
            )
    for _ in range(2):  # pedestrians on the verge
        present = torch.rand(n, generator=g) < 0.4
        z = uniform(n, 8.0, 35.0, g)
        x = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) * uniform(
            n, 4.0, 5.0, g
        )
        body, _, _ = standing(x, z, 0.5, 1.75)
        colour = torch.rand(n, 3, generator=g) * 0.6 + 0.2
        images, masks = paint(images, masks, body & present[:, None, None], colour, 7)
    n_vehicles = torch.randint(0, 3, (n,), generator=g)
    vehicle_depths = uniform((n, 2), 8.0, 50.0, g).sort(dim=1, descending=True).values
    for k in range(2):  # vehicles in either lane, far first
        lane = torch.where(torch.rand(n, generator=g) < 0.5, -1.75, 1.75)
        body, u, bottom = standing(lane, vehicle_depths[:, k], 1.8, 1.5)
        colour = torch.rand(n, 3, generator=g) * 0.7 + 0.15
        images, masks = paint(
            images, masks, body & (n_vehicles > k)[:, None, None], colour, 6
        )

    images = (images + 0.02 * torch.randn(n, 1, HEIGHT, WIDTH, generator=g)).clamp(0, 1)
    seed_value = seed if isinstance(seed, int) else None
    return WorldSet(
        "driving scenes",
        images.float(),
        steering_angle(curvature).float(),
        masks,
        list(DRIVING_CATEGORIES),
        None,
        {
            "curvature": curvature,
            "offset": offset,
            "horizon": horizon,
            "n_vehicles": n_vehicles,
        },
        seed_value,
    )
