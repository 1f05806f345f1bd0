"""The containers the real-data loaders return, and the image reader they share.

Conventions: images are float32 tensors in [0, 1], shape (N, C, H, W) (C = 1 for grey
digits, 3 for photos); labels are int64, shape (N,); ``classes[label]`` is the label's
name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .paths import fetch, fetch_many

__all__ = ["ImageSet", "FileImageSet", "SegmentationSet", "read_image"]


def read_image(path: Path | str, mode: str = "RGB") -> Tensor:
    """Read an image file as a float32 tensor in [0, 1], shape (C, H, W).

    ``mode`` is a PIL mode: ``"RGB"`` (grey images are replicated to 3 channels) or
    ``"L"``.
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(
            "read_image: path must be a str or a pathlib.Path, got"
            f" {type(path).__name__}"
        )
    with Image.open(path) as img:
        array = np.asarray(img.convert(mode), dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def _check_indices(indices: Sequence[int] | Tensor, n: int) -> list[int]:
    out = [int(i) for i in indices]
    bad = [i for i in out if not -n <= i < n]
    if bad:
        raise IndexError(f"indices {bad[:5]} out of range for a set of {n} items")
    return out


@dataclass(eq=False)
class ImageSet(Dataset):
    """A labelled image set held in memory; ``set[i]`` is ``(image (C, H, W), label)``.

    Attributes:
        name: the data set's name.
        images: float32 in [0, 1], shape (N, C, H, W).
        labels: int64, shape (N,).
        classes: the class names; ``classes[label]`` names a label (for Imagenette the
            1000 ImageNet names, since its labels are ImageNet indices).
        ids: a stable identifier per image (its file path in the data directory, or its
            index in the source file).
        label_values: the labels the set can hold, in class order (Imagenette: its 10
            ImageNet indices; elsewhere ``range(len(classes))``).
    """

    name: str
    images: Tensor
    labels: Tensor
    classes: list[str]
    ids: list[str]
    label_values: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if (
            self.images.ndim != 4
            or self.labels.shape != (self.images.shape[0],)
            or len(self.ids) != len(self.labels)
        ):
            raise ValueError(
                f"{self.name}: images (N, C, H, W), labels (N,) and ids (N) must agree,"
                f" got {tuple(self.images.shape)}, {tuple(self.labels.shape)},"
                f" {len(self.ids)}"
            )
        if not self.label_values:
            self.label_values = list(range(len(self.classes)))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, indices: Sequence[int] | Tensor) -> "ImageSet":
        """The images at ``indices`` (in that order), as a new set."""
        idx = _check_indices(indices, len(self))
        return ImageSet(
            self.name,
            self.images[idx],
            self.labels[idx],
            self.classes,
            [self.ids[i] for i in idx],
            list(self.label_values),
        )

    def __repr__(self) -> str:
        return (
            f"ImageSet({self.name!r}, {len(self)} images"
            f" {tuple(self.images.shape[1:])}, {len(self.label_values)} classes)"
        )


@dataclass(eq=False)
class FileImageSet(Dataset):
    """A labelled image set read from files on demand (for sets too large to hold in
    memory).

    ``set[i]`` fetches and decodes one file: ``(image (3, H, W) in [0, 1], label)``.
    Wrap it in a ``torch.utils.data.DataLoader`` to iterate in batches, or call
    ``load()`` for an :class:`ImageSet`. Attributes as in :class:`ImageSet`; ``ids`` are
    paths in the data directory.
    """

    name: str
    ids: list[str]
    labels: Tensor
    classes: list[str]
    label_values: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return read_image(fetch(self.ids[index])), int(self.labels[index])

    def load(self) -> ImageSet:
        """Read every image into memory (0.6 MB per 224x224 image); missing files are
        fetched first."""
        paths = fetch_many(self.ids)
        images = (
            torch.stack([read_image(p) for p in paths])
            if paths
            else torch.empty(0, 3, 0, 0)
        )
        return ImageSet(
            self.name,
            images,
            self.labels.clone(),
            self.classes,
            list(self.ids),
            list(self.label_values),
        )

    def __repr__(self) -> str:
        return (
            f"FileImageSet({self.name!r}, {len(self)} files, {len(self.label_values)}"
            " classes)"
        )


@dataclass(eq=False)
class SegmentationSet(Dataset):
    """Images with a category per pixel; ``set[i]`` is
    ``(image (3, H, W), mask (H, W))``.

    Attributes:
        name: the data set's name.
        images: float32 in [0, 1], shape (N, 3, H, W).
        masks: int64 category indices, shape (N, H, W); ``categories[mask[y, x]]`` names
            a pixel.
        categories: the category names.
        palette: uint8 RGB colour per category, shape (len(categories), 3), for drawing
            masks.
        ids: the image files' paths in the data directory.
    """

    name: str
    images: Tensor
    masks: Tensor
    categories: list[str]
    palette: Tensor
    ids: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.masks[index]

    def colorize(self, mask: Tensor) -> Tensor:
        """A mask (H, W) drawn in the palette's colours: float (3, H, W) in [0, 1]."""
        return self.palette[mask].permute(2, 0, 1).float() / 255.0

    def __repr__(self) -> str:
        return (
            f"SegmentationSet({self.name!r}, {len(self)} images"
            f" {tuple(self.images.shape[1:])}, {len(self.categories)} categories)"
        )
