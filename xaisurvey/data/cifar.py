"""A 1,000-image subset of the CIFAR-10 test set (the first 100 images of each class,
32x32).

The images are a JPEG re-encoding of the originals (lossy), which costs pretrained CIFAR
models about ten points of accuracy compared with the lossless test set.
"""

from __future__ import annotations

import torch

from .paths import fetch_many, manifest
from .sets import ImageSet, read_image

__all__ = ["cifar10_subset", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def cifar10_subset(*, per_class: int | None = None) -> ImageSet:
    """The CIFAR-10 test subset: float32 (N, 3, 32, 32) in [0, 1], labels in CIFAR-10
    order.

    Args:
        per_class: keep the first ``per_class`` images of each class (at most 100);
            ``None``: all.

    Returns:
        An :class:`ImageSet` ordered by class, then by file name; ``ids`` are the files'
        paths.

    Example:
        >>> cifar = cifar10_subset()
        >>> len(cifar), cifar.classes[int(cifar.labels[0])]
        (1000, 'airplane')
    """
    if per_class is not None and (not isinstance(per_class, int) or per_class < 0):
        raise ValueError(
            f"per_class must be a non-negative int or None, got {per_class!r}"
        )
    ids: list[str] = []
    labels: list[int] = []
    files = sorted(manifest()["files"])
    for label, name in enumerate(CIFAR10_CLASSES):
        mine = [f for f in files if f.startswith(f"cifar10-test-subset/{name}/")][
            :per_class
        ]
        ids += mine
        labels += [label] * len(mine)
    paths = fetch_many(ids)
    images = (
        torch.stack([read_image(p) for p in paths])
        if paths
        else torch.empty(0, 3, 32, 32)
    )
    return ImageSet(
        "CIFAR-10 test subset",
        images,
        torch.tensor(labels, dtype=torch.int64),
        list(CIFAR10_CLASSES),
        ids,
    )
