"""The container every synthetic world returns, and the small drawing helpers the worlds
share.

Conventions (the same as the real loaders'): images float32 in [0, 1], shape
(N, C, H, W); ``masks`` int64 (N, H, W), ``masks[n, y, x]`` indexes ``categories``;
classification targets are int64 (N,) indexing ``classes``; regression targets are
float32 (N,).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["WorldSet", "generator_from"]


@dataclass(eq=False)
class WorldSet(Dataset):
    """A generated data set with pixel-level ground truth; ``set[i]`` is
    ``(image (C, H, W), target)``.

    Attributes:
        name: the world's name.
        images: float32 in [0, 1], shape (N, C, H, W).
        targets: int64 class indices (N,) for classification, float32 (N,) for
            regression.
        masks: int64 (N, H, W); each pixel's category, an index into ``categories``.
        categories: the names of the mask values (``categories[0]`` is the background).
        classes: the class names for classification (``classes[target]``), ``None`` for
            regression.
        params: per-sample generation parameters (tensors with first dimension N), e.g.
            the road's curvature or a terrain patch's heights in metres.
        seed: the seed the set was generated from.
    """

    name: str
    images: Tensor
    targets: Tensor
    masks: Tensor
    categories: list[str]
    classes: list[str] | None
    params: dict[str, Tensor] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if (
            self.images.ndim != 4
            or self.targets.shape != (n,)
            or self.masks.shape != (n, *self.images.shape[2:])
        ):
            raise ValueError(
                f"{self.name}: images (N, C, H, W), targets (N,) and masks (N, H, W)"
                f" must agree, got {tuple(self.images.shape)},"
                f" {tuple(self.targets.shape)}, {tuple(self.masks.shape)}"
            )
        for key, value in self.params.items():
            if value.shape[:1] != (n,):
                raise ValueError(
                    f"{self.name}: params[{key!r}] must have first dimension {n}, got"
                    f" {tuple(value.shape)}"
                )

    @property
    def labels(self) -> Tensor:
        """The class indices (an alias of ``targets``, as in the real loaders'
        ``ImageSet``)."""
        if self.classes is None:
            raise AttributeError(
                f"{self.name} is a regression world: it has targets, not labels"
            )
        return self.targets

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.targets[index]

    def mask_of(self, category: str) -> Tensor:
        """Boolean (N, H, W): the pixels of ``category`` (a name from
        ``categories``)."""
        if category not in self.categories:
            raise KeyError(
                f"{self.name} has no category {category!r}; its categories:"
                f" {', '.join(self.categories)}"
            )
        return self.masks == self.categories.index(category)

    def subset(self, indices: Tensor | slice) -> "WorldSet":
        """The samples at ``indices`` (a slice, index tensor or boolean tensor), as a
        new set."""
        return WorldSet(
            self.name,
            self.images[indices],
            self.targets[indices],
            self.masks[indices],
            list(self.categories),
            None if self.classes is None else list(self.classes),
            {key: value[indices] for key, value in self.params.items()},
            self.seed,
        )


def generator_from(seed: int | torch.Generator) -> torch.Generator:
    """A CPU ``torch.Generator``: ``seed`` itself when it is one, else a new one seeded
    with ``seed``."""
    if isinstance(seed, torch.Generator):
        return seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative int or a torch.Generator, got {seed!r}"
        )
    return torch.Generator().manual_seed(seed)


def check_count(n: int, what: str = "n") -> None:
    """Raise a clear error unless ``n`` is a positive int."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{what} must be a positive int, got {n!r}")


def uniform(
    shape: tuple[int, ...] | int, low: float, high: float, g: torch.Generator
) -> Tensor:
    """Uniform samples in [low, high) from ``g``."""
    shape = (shape,) if isinstance(shape, int) else shape
    return low + (high - low) * torch.rand(shape, generator=g)


def smooth_noise(
    n: int, height: int, width: int, cell: int, g: torch.Generator, channels: int = 1
) -> Tensor:
    """Value noise: uniform noise on a coarse grid of ``cell``-pixel cells, bilinearly
    upsampled; (N, C, H, W) in [0, 1]."""
    coarse = torch.rand(n, channels, height // cell + 2, width // cell + 2, generator=g)
    up = torch.nn.functional.interpolate(
        coarse, scale_factor=cell, mode="bilinear", align_corners=False
    )
    return up[:, :, :height, :width].contiguous()


def paint(
    images: Tensor, masks: Tensor, region: Tensor, colour: Tensor, category: int
) -> tuple[Tensor, Tensor]:
    """Paint ``region`` (bool (N, H, W)) with ``colour`` ((N, C) or (N, C, H, W)) and
    label it ``category``.

    Returns the new ``(images, masks)`` (``torch.where`` is much faster than boolean
    indexing here).
    """
    if colour.ndim == 2:
        colour = colour[:, :, None, None]
    images = torch.where(region[:, None], colour, images)
    masks = torch.where(region, torch.tensor(category, dtype=masks.dtype), masks)
    return images, masks
