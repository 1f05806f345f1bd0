"""CamVid validation frames: 101 consecutive frames of a driving video with a category
per pixel.

Frames are 480x360 RGB; each label PNG holds a category index per pixel (0 Sky, ..., 10
Bicyclist, 11 Unlabelled), as in the SegNet tutorial's 11-class version of CamVid.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .paths import fetch, fetch_many, manifest
from .sets import SegmentationSet, read_image

__all__ = ["camvid", "CAMVID_CATEGORIES"]

CAMVID_CATEGORIES = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
    "Unlabelled",
]


def _palette() -> torch.Tensor:
    with Image.open(fetch("camvid/camvid11.png")) as img:
        colours = np.asarray(img.convert("RGB"))[0, : len(CAMVID_CATEGORIES)]
    return torch.from_numpy(colours.copy())


def camvid(
    *, limit: int | None = None, size: tuple[int, int] | None = None
) -> SegmentationSet:
    """CamVid validation frames with per-pixel category masks, in video order.

    Args:
        limit: keep the first ``limit`` frames (all 101 take 210 MB as float tensors at
            full size).
        size: ``(height, width)`` to resize to (images bilinearly with antialiasing,
            masks by nearest neighbour so they stay category indices); ``None`` keeps
            360x480.

    Returns:
        A :class:`SegmentationSet`: images float32 (N, 3, H, W) in [0, 1], masks int64
        (N, H, W) with values in 0..11 indexing ``CAMVID_CATEGORIES``, the dataset's
        colour palette.

    Example:
        >>> frames = camvid(limit=2, size=(90, 120))
        >>> tuple(frames.images.shape), tuple(frames.masks.shape)
        ((2, 3, 90, 120), (2, 90, 120))
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(
            f"size must be (height, width) with positive entries, got {size!r}"
        )
    ids = sorted(f for f in manifest()["files"] if f.startswith("camvid/val/"))[:limit]
    annots = [f.replace("camvid/val/", "camvid/valannot/") for f in ids]
    frames = fetch_many(ids)
    labels = fetch_many(annots)
    images = (
        torch.stack([read_image(p) for p in frames])
        if frames
        else torch.empty(0, 3, 360, 480)
    )
    masks = (
        torch.stack(
            [
                torch.from_numpy(np.asarray(Image.open(p), dtype=np.int64).copy())
                for p in labels
            ]
        )
        if labels
        else torch.empty(0, 360, 480, dtype=torch.int64)
    )
    if size is not None and len(ids):
        images = F.interpolate(
            images,
            size=tuple(size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        images = images.clamp_(0.0, 1.0)
        masks = F.interpolate(masks[:, None].float(), size=tuple(size), mode="nearest")[
            :, 0
        ].long()
    return SegmentationSet(
        "CamVid (val)", images, masks, list(CAMVID_CATEGORIES), _palette(), ids
    )
