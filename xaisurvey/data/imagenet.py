"""ImageNet-world data: the class names, real photos, and Imagenette's validation
images.

The class names come from torchvision's weight metadata (no download). Imagenette is a
10-class subset of ImageNet; its labels here are ImageNet indices, so an ImageNet
model's outputs can be compared with them directly.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from .paths import fetch, manifest
from .sets import FileImageSet, ImageSet, read_image

__all__ = [
    "imagenet_classes",
    "photo",
    "photos",
    "imagenette",
    "imagenette_files",
    "IMAGENETTE_CLASSES",
]

# Imagenette's folders (ImageNet WordNet ids) and their ImageNet class indices.
IMAGENETTE_CLASSES: dict[str, int] = {
    "n01440764": 0,  # tench
    "n02102040": 217,  # English springer
    "n02979186": 482,  # cassette player
    "n03000684": 491,  # chain saw
    "n03028079": 497,  # church
    "n03394916": 566,  # French horn
    "n03417042": 569,  # garbage truck
    "n03425413": 571,  # gas pump
    "n03445777": 574,  # golf ball
    "n03888257": 701,  # parachute
}

# name -> (path in the data directory, what it shows)
_PHOTOS: dict[str, tuple[str, str]] = {
    "cat_dog": (
        "images/grad-cam-pytorch/cat_dog.png",
        (
            "224x224 crop of the Grad-CAM paper's photo: a bull mastiff (243) and a"
            " tabby cat (281)"
        ),
    ),
    "cat_dog_original": (
        "images/grad-cam-pytorch/cat_dog_original.jpg",
        "the Grad-CAM paper's cat-and-dog photo, 640x480",
    ),
    "vegetables": ("images/grad-cam-pytorch/vegetables.jpg", "vegetables, 224x224"),
    "both": (
        "images/pytorch-grad-cam/both.png",
        "a dog and a cat, 224x224 (pytorch-grad-cam's example)",
    ),
    "cat": ("images/pytorch-grad-cam/cat.jpg", "a cat, 224x224"),
    "dog": ("images/pytorch-grad-cam/dog.jpg", "a dog, 224x224"),
    "dog_cat": ("images/pytorch-grad-cam/dog_cat.jfif", "a dog and a cat, 284x177"),
    "dogs": ("images/pytorch-grad-cam/dogs.png", "several dogs, 347x342"),
    "horses": ("images/pytorch-grad-cam/horses.jpg", "horses, 425x280"),
    "samoyed": (
        "images/pytorch-hub/dog.jpg",
        "a Samoyed (258), 1546x1213 (torch.hub's example)",
    ),
    "tabbycat_dog": (
        "images/ramprs-grad-cam/tabbycat_dog.jpg",
        "a collage of cat and dog photos, 494x500",
    ),
}


@lru_cache(maxsize=1)
def _imagenet_classes() -> tuple[str, ...]:
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard (torchvision) order.

    Example:
        >>> names = imagenet_classes()
        >>> len(names), names[0], names[281]
        (1000, 'tench', 'tabby')
    """
    return list(_imagenet_classes())


def photos() -> dict[str, str]:
    """The names :func:`photo` accepts, each with what the photo shows."""
    return {name: text for name, (_, text) in _PHOTOS.items()}


def photo(name: str) -> Tensor:
    """A real photo for ImageNet models, as float32 (3, H, W) in [0, 1], at its original
    size.

    Resize and crop it with the model's ``preprocess`` (see ``xaisurvey.models.load``).

    Args:
        name: one of :func:`photos`, e.g. ``"cat_dog"`` (the Grad-CAM paper's image).

    Example:
        >>> tuple(photo("cat_dog").shape)
        (3, 224, 224)
    """
    if name not in _PHOTOS:
        raise KeyError(
            f"unknown photo {name!r}; available photos: {', '.join(_PHOTOS)}"
        )
    return read_image(fetch(_PHOTOS[name][0]))


def imagenette_files(
    *, per_class: int | None = None, limit: int | None = None
) -> FileImageSet:
    """Imagenette's validation images (3,925, 224x224) as a set read from disk on
    demand.

    Order is deterministic and balanced: round-robin over the 10 classes (the i-th image
    of every class comes before the (i+1)-th of any), files sorted by name within a
    class. So the first ``limit`` images cover the classes evenly.

    Args:
        per_class: keep at most this many images of each class (the first ones by file
            name).
        limit: keep at most this many images in all (after ``per_class``).

    Returns:
        A :class:`FileImageSet`; labels are ImageNet class indices (tench = 0, ...,
        parachute = 701), ``classes`` the 1000 ImageNet names, ``label_values`` the 10
        Imagenette indices.
    """
    for arg, value in (("per_class", per_class), ("limit", limit)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{arg} must be a non-negative int or None, got {value!r}")
    prefix = "imagenette-224-val/val/"
    by_class: dict[str, list[str]] = {wnid: [] for wnid in IMAGENETTE_CLASSES}
    for relpath in manifest()["files"]:
        if relpath.startswith(prefix):
            by_class[relpath[len(prefix) :].split("/")[0]].append(relpath)
    lists = [sorted(files)[:per_class] for files in by_class.values()]
    ids: list[str] = []
    labels: list[int] = []
    for rank in range(max(len(files) for files in lists)):
        for wnid, files in zip(by_class, lists):
            if rank < len(files):
                ids.append(files[rank])
                labels.append(IMAGENETTE_CLASSES[wnid])
    if limit is not None:
        ids, labels = ids[:limit], labels[:limit]
    return FileImageSet(
        "Imagenette (val)",
        ids,
        torch.tensor(labels, dtype=torch.int64),
        imagenet_classes(),
        list(IMAGENETTE_CLASSES.values()),
    )


def imagenette(*, per_class: int | None = None, limit: int | None = None) -> ImageSet:
    """Imagenette validation images in memory: float32 (N, 3, 224, 224) in [0, 1],
    ImageNet labels.

    Same selection and order as :func:`imagenette_files`. All 3,925 images take 2.4 GB
    as float tensors; iterate over :func:`imagenette_files` instead when you need them
    all.

    Example:
        >>> few = imagenette(per_class=2)
        >>> len(few), few.classes[int(few.labels[0])]
        (20, 'tench')
    """
    return imagenette_files(per_class=per_class, limit=limit).load()
