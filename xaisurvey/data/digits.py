"""MNIST and Fashion-MNIST: small grey 28x28 images, 10 classes.

Offline we have the 10,000 MNIST *test* images (the training images are not in the data
copy), so :func:`mnist` splits them into our own training and held-out parts with a
seeded permutation; and 900 real Fashion-MNIST images (90 per class) tiled in the data
set's sprite PNG.
"""

from __future__ import annotations

import gzip
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .paths import fetch
from .sets import ImageSet

__all__ = [
    "mnist",
    "fashion_mnist",
    "split_indices",
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
]

Split = Literal["train", "test", "all"]

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def split_indices(n: int, test_size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A seeded random split of ``range(n)``: ``(train, test)`` index tensors, each
    sorted.

    The same ``(n, test_size, seed)`` always gives the same split; the parts are
    disjoint and together cover ``range(n)``.

    Example:
        >>> train, test = split_indices(10, 3)
        >>> (
        ...     len(train),
        ...     len(test),
        ...     sorted(train.tolist() + test.tolist()) == list(range(10)),
        ... )
        (7, 3, True)
    """
    if not 0 <= test_size <= n:
        raise ValueError(f"test_size must be between 0 and {n}, got {test_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[test_size:].sort().values, order[:test_size].sort().values


def _read_idx(relpath: str) -> np.ndarray:
    # IDX format: magic (2 zero bytes, dtype code 0x08 = uint8, number of dims),
    # big-endian dims, data.
    with gzip.open(fetch(relpath), "rb") as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{relpath} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _split(full: ImageSet, split: Split, test_size: int, seed: int) -> ImageSet:
    if split == "all":
        return full
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    train, test = split_indices(len(full), test_size, seed)
    part = full.subset(train if split == "train" else test)
    part.name = f"{full.name} ({split})"
    return part


def mnist(split: Split = "train", *, test_size: int = 2000, seed: int = 0) -> ImageSet:
    """MNIST digits from the 10,000 official test images, split into our own train and
    test parts.

    Args:
        split: ``"train"`` (10,000 - ``test_size`` images), ``"test"`` (``test_size``
            images) or ``"all"`` (all 10,000, in file order).
        test_size: how many images are held out.
        seed: the seed of the permutation that splits them (the split is the same on
            every machine).

    Returns:
        An :class:`ImageSet`: images float32 (N, 1, 28, 28) in [0, 1] (white digit on
        black), labels 0-9, ``ids`` the index in the official test file.

    Example:
        >>> train, test = mnist("train"), mnist("test")
        >>> len(train), len(test), tuple(train.images.shape[1:])
        (8000, 2000, (1, 28, 28))
    """
    images = _read_idx("mnist/t10k-images-idx3-ubyte.gz")
    labels = _read_idx("mnist/t10k-labels-idx1-ubyte.gz")
    full = ImageSet(
        "MNIST",
        torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0),
        torch.from_numpy(labels.astype(np.int64)),
        list(MNIST_CLASSES),
        [str(i) for i in range(len(labels))],
    )
    return _split(full, split, test_size, seed)


def fashion_mnist(
    split: Split = "all", *, test_size: int = 180, seed: int = 0
) -> ImageSet:
    """The 900 Fashion-MNIST images (90 per class) of the data set's sprite.

    The sprite is an 840x840 grid of 30x30 tiles, three rows per class in label order.

    Args:
        split: ``"all"`` (900), or a seeded ``"train"`` / ``"test"`` split like
            :func:`mnist`'s.
        test_size: how many images are held out by the split.
        seed: the split's seed.

    Returns:
        An :class:`ImageSet`: images float32 (N, 1, 28, 28) in [0, 1], labels 0-9 with
        ``FASHION_MNIST_CLASSES`` names, ``ids`` the tile index in the sprite.

    Example:
        >>> fm = fashion_mnist()
        >>> fm.classes[int(fm.labels[0])]
        'T-shirt/top'
    """
    with Image.open(fetch("fashion-mnist/fashion-mnist-sprite.png")) as img:
        sprite = np.asarray(img.convert("RGBA"))[..., 0]  # grey: R = G = B
    tiles = sprite.reshape(30, 28, 30, 28).transpose(0, 2, 1, 3).reshape(900, 28, 28)
    full = ImageSet(
        "Fashion-MNIST",
        torch.from_numpy(tiles.copy()).unsqueeze(1).float().div_(255.0),
        torch.arange(10).repeat_interleave(90),
        list(FASHION_MNIST_CLASSES),
        [str(i) for i in range(900)],
    )
    return _split(full, split, test_size, seed)
