"""Data: real data sets (checksummed, fetched on demand) and synthetic worlds with
ground truth.

Real data (``XAISURVEY_DATA`` or the user cache; see ``xaisurvey.data.paths``):

- :func:`mnist`, :func:`fashion_mnist`: grey 28x28 digits and clothes;
- :func:`imagenette`, :func:`imagenette_files`: ImageNet validation images of 10
  classes;
- :func:`photo`: real photos (the Grad-CAM paper's cat and dog, ...), names in
  :func:`photos`;
- :func:`camvid`: driving frames with per-pixel categories;
- :func:`cifar10_subset`: 1,000 CIFAR-10 test images.

Images are float32 tensors in [0, 1], shape (N, C, H, W) or (C, H, W).
"""

from .camvid import CAMVID_CATEGORIES, camvid
from .cifar import CIFAR10_CLASSES, cifar10_subset
from .digits import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    fashion_mnist,
    mnist,
    split_indices,
)
from .imagenet import (
    IMAGENETTE_CLASSES,
    imagenet_classes,
    imagenette,
    imagenette_files,
    photo,
    photos,
)
from .paths import (
    CheckReport,
    ChecksumError,
    DataError,
    DataNotFoundError,
    check,
    data_dir,
    fetch,
    fetch_all,
    fetch_many,
    sha256_file,
    source_url,
)
from .sets import FileImageSet, ImageSet, SegmentationSet, read_image

__all__ = [
    "CAMVID_CATEGORIES",
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "IMAGENETTE_CLASSES",
    "MNIST_CLASSES",
    "CheckReport",
    "ChecksumError",
    "DataError",
    "DataNotFoundError",
    "FileImageSet",
    "ImageSet",
    "SegmentationSet",
    "camvid",
    "check",
    "cifar10_subset",
    "data_dir",
    "fashion_mnist",
    "fetch",
    "fetch_all",
    "fetch_many",
    "imagenet_classes",
    "imagenette",
    "imagenette_files",
    "mnist",
    "photo",
    "photos",
    "read_image",
    "sha256_file",
    "source_url",
    "split_indices",
]
