"""GradSUM (Chalom and Klein): how much of a heat map falls on each semantic category.

The scheme combines a heat map ``M`` (Grad-CAM, scaled to [0, 1]) with a segmentation of
the same image into categories ``k`` (road, vehicle, sky, ...). With ``P[k]`` the 0/1
mask of category ``k`` and ``N[k] = sum(P[k])`` its pixel count, the talk's algorithm
gives::

    G[k] = 100 * sum(P[k] * M) / N[k]   (mean activation inside category k, percent)

We also report the category's *share* of the whole map::

    S[k] = 100 * sum(P[k] * M) / sum(M) (percent of all heat that lands on category k)

``G`` says how strongly a category is looked at, whatever its size; ``S`` how much of
the model's attention it takes, which grows with its area. Averaging per-image results
over a data set gives a model's *profile*.

Absent categories are explicit, never NaN: when ``N[k] = 0`` the image has no pixel of
``k``, so ``G[k]`` is undefined and left out of that image's ``percent`` (and its share
is 0). A profile averages ``G[k]`` only over the images containing ``k``, records how
many those were, and lists the categories found in no image as ``absent``.

The map and the segmentation may live on any device in any dtype: they are copied to the
CPU (the map in float64) before the sums, so the result is the same on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

__all__ = ["GradSum", "GradSumProfile", "category_masks", "gradsum", "gradsum_profile"]


@dataclass(frozen=True)
class GradSum:
    """GradSUM of one image.

    Attributes:
        percent: ``G[k]`` for each category present in the image (absent ones are left
            out).
        share: ``S[k]`` for every category (0 for absent ones; 0 everywhere for an
            all-zero map).
        pixels: ``N[k]`` for every category.
    """

    percent: dict[str, float]
    share: dict[str, float]
    pixels: dict[str, int]


@dataclass(frozen=True)
class GradSumProfile:
    """GradSUM averaged over images.

    Attributes:
        categories: all category names, in the order given.
        percent: mean ``G[k]`` over the images that contain ``k`` (categories in
            ``absent`` left out).
        share: mean ``S[k]`` over all images.
        images: per category, the number of images containing it.
        absent: categories found in no image.
        n_images: number of images averaged.
    """

    categories: tuple[str, ...]
    percent: dict[str, float]
    share: dict[str, float]
    images: dict[str, int]
    absent: tuple[str, ...]
    n_images: int


def _check_categories(categories: Mapping[str, Sequence[int]]) -> None:
    if not categories:
        raise ValueError("gradsum: give at least one category, e.g. {'road': [3]}")
    seen: dict[int, str] = {}
    for name, labels in categories.items():
        if len(labels) == 0:
            raise ValueError(f"gradsum: category {name!r} has no label ids")
        for label in labels:
            if label in seen:
                raise ValueError(
                    f"gradsum: label {label} is in both {seen[label]!r} and {name!r}; "
                    "categories must be disjoint"
                )
            seen[label] = name


def category_masks(
    segmentation: torch.Tensor, categories: Mapping[str, Sequence[int]]
) -> torch.Tensor:
    """The masks ``P[k]``: a (K, H, W) boolean tensor, one per category, from an (H, W)
    label map.

    Example:
        >>> seg = torch.tensor([[0, 1], [2, 2]])
        >>> category_masks(seg, {"a": [0, 1], "b": [2]}).sum(dim=(1, 2)).tolist()
        [2, 2]
    """
    _check_categories(categories)
    if segmentation.dim() != 2:
        raise ValueError(
            "gradsum: the segmentation must be (H, W) integer labels, got shape "
            f"{tuple(segmentation.shape)}"
        )
    if segmentation.is_floating_point():
        raise ValueError(
            "gradsum: the segmentation must hold integer labels, not floats"
        )
    labels = segmentation.detach()
    return torch.stack(
        [
            torch.isin(labels, torch.tensor(list(ids), device=labels.device))
            for ids in categories.values()
        ]
    )


def gradsum(
    heatmap: torch.Tensor,
    segmentation: torch.Tensor,
    categories: Mapping[str, Sequence[int]],
    *,
    normalize: bool = True,
) -> GradSum:
    """GradSUM of one image: ``G[k] = 100 * sum(P[k] * M) / N[k]`` and the share
    ``S[k]``.

    Args:
        heatmap: (H, W) non-negative heat map ``M`` (e.g. Grad-CAM upsampled to the
            image size).
        segmentation: (H, W) integer label map of the same image.
        categories: name -> label ids forming the category (disjoint), e.g.
            ``{"road": [3, 4]}``.
        normalize: divide ``M`` by its maximum so that it lies in [0, 1] (the talk's
            convention); an all-zero map stays zero and gives ``G = 0`` and ``S = 0``
            everywhere.

    Returns:
        a :class:`GradSum`.

    Example:
        >>> m = torch.tensor([[1.0, 0.5], [0.0, 0.0]])
        >>> seg = torch.tensor([[0, 0], [1, 1]])
        >>> r = gradsum(m, seg, {"top": [0], "bottom": [1], "car": [2]})
        >>> r.percent, r.share["top"], r.pixels["car"]
        ({'top': 75.0, 'bottom': 0.0}, 100.0, 0)
    """
    if not isinstance(heatmap, torch.Tensor) or heatmap.dim() != 2:
        raise ValueError(
            "gradsum: the heat map must be an (H, W) tensor, got "
            f"{getattr(heatmap, 'shape', heatmap)!r}"
        )
    if heatmap.shape != segmentation.shape:
        raise ValueError(
            f"gradsum: heat map {tuple(heatmap.shape)} and segmentation "
            f"{tuple(segmentation.shape)} differ; "
            "upsample the heat map to the segmentation's size first"
        )
    m = heatmap.detach().cpu().to(torch.float64)
    if isinstance(segmentation, torch.Tensor):
        segmentation = segmentation.detach().cpu()
    if not torch.isfinite(m).all():
        raise ValueError("gradsum: the heat map contains NaN or infinite values")
    if (m < 0).any():
        raise ValueError(
            "gradsum: the heat map has negative values; GradSUM expects a non-negative "
            "map (Grad-CAM after ReLU)"
        )
    if normalize and m.max() > 0:
        m = m / m.max()
    masks = category_masks(segmentation, categories).to(torch.float64)
    inside = (masks * m).sum(dim=(1, 2))
    counts = masks.sum(dim=(1, 2))
    total = m.sum()
    percent, share, pixels = {}, {}, {}
    for k, name in enumerate(categories):
        pixels[name] = int(counts[k])
        if counts[k] > 0:
            percent[name] = float(100 * inside[k] / counts[k])
        share[name] = float(100 * inside[k] / total) if total > 0 else 0.0
    return GradSum(percent=percent, share=share, pixels=pixels)


def gradsum_profile(results: Sequence[GradSum]) -> GradSumProfile:
    """Average per-image GradSUM results into a model's profile (absent categories
    explicit).

    Example:
        >>> a = GradSum(
        ...     percent={"road": 40.0},
        ...     share={"road": 100.0, "car": 0.0},
        ...     pixels={"road": 5, "car": 0},
        ... )
        >>> b = GradSum(
        ...     percent={"road": 20.0, "car": 60.0},
        ...     share={"road": 50.0, "car": 50.0},
        ...     pixels={"road": 5, "car": 2},
        ... )
        >>> p = gradsum_profile([a, b])
        >>> p.percent, p.images["car"], p.absent
        ({'road': 30.0, 'car': 60.0}, 1, ())
    """
    if len(results) == 0:
        raise ValueError("gradsum_profile: no results to average")
    categories = tuple(results[0].pixels)
    for r in results:
        if tuple(r.pixels) != categories:
            raise ValueError(
                "gradsum_profile: every result must use the same categories"
            )
    images = {k: sum(1 for r in results if k in r.percent) for k in categories}
    percent = {
        k: sum(r.percent[k] for r in results if k in r.percent) / images[k]
        for k in categories
        if images[k] > 0
    }
    share = {k: sum(r.share[k] for r in results) / len(results) for k in categories}
    absent = tuple(k for k in categories if images[k] == 0)
    return GradSumProfile(
        categories=categories,
        percent=percent,
        share=share,
        images=images,
        absent=absent,
        n_images=len(results),
    )
