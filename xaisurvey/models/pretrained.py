"""The pretrained models of the registry: MobileNetV1-0.25 (ImageNet), CIFAR-10
ResNet-20/56, and any torchvision classifier whose weights are in the local torch cache
(``"torchvision:<name>"``).

Weights come from the data directory (``xaisurvey.data.fetch``: checksummed, downloaded
once when missing) and load with ``strict=True``. Every model takes images in [0, 1] and
normalises them itself. Accuracies are not measured here (loading stays fast); the tests
and the data appendix measure them.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.cifar import CIFAR10_CLASSES
from ..data.imagenet import imagenet_classes
from ..data.paths import DataNotFoundError, fetch, manifest
from .cifar_resnet import resnet
from .mobilenet import MobileNetV1, Normalize
from .registry import LoadedModel, register, register_family

__all__ = [
    "resize_center_crop",
    "load_checkpoint",
    "parameter_count",
    "measure_accuracy",
]

_MOBILENET = "weights/imagenet_mobilenetv1_025/model_best.pth.tar"
_RESNETS = {
    20: "weights/cifar10_resnet/resnet20-12fca82f.th",
    56: "weights/cifar10_resnet/resnet56-4bfd9763.th",
}


def resize_center_crop(image: Any, size: int) -> Tensor:
    """Resize so the shorter side is ``size`` (antialiased), then crop the centre
    ``size`` x ``size``.

    Args:
        image: a PIL image, or a float tensor (C, H, W) in [0, 1] with 1 or 3 channels
            (grey is repeated to 3 channels).
        size: the output side.

    Returns:
        Float32 (3, size, size) in [0, 1]. An image already ``size`` x ``size`` is
        returned unchanged (so the whole 224x224 photo is explained, not the centre of
        an upscaled copy).

    Example:
        >>> resize_center_crop(torch.rand(3, 480, 640), 224).shape
        torch.Size([3, 224, 224])
    """
    if isinstance(image, Image.Image):
        image = (
            torch.from_numpy(
                np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
            ).permute(2, 0, 1)
            / 255.0
        )
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] not in (1, 3):
        shape = (
            tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        )
        raise ValueError(
            f"expected a PIL image or a (C, H, W) tensor with C = 1 or 3, got {shape}"
        )
    if not image.is_floating_point() or image.min() < 0 or image.max() > 1:
        raise ValueError(
            "expected a float image in [0, 1] (divide 8-bit images by 255)"
        )
    image = image.float().expand(3, -1, -1)
    height, width = image.shape[1:]
    if (height, width) != (size, size):
        scale = size / min(height, width)
        new = (max(size, round(height * scale)), max(size, round(width * scale)))
        image = F.interpolate(
            image[None], size=new, mode="bilinear", antialias=True, align_corners=False
        )[0]
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        image = image[:, top : top + size, left : left + size].clamp(0.0, 1.0)
    return image.contiguous()


def parameter_count(model: nn.Module) -> int:
    """The number of parameters (weights and biases; BatchNorm running statistics
    excluded)."""
    return sum(p.numel() for p in model.parameters())


def load_checkpoint(model: nn.Module, relpath: str) -> dict[str, Any]:
    """Load a legacy ``{'state_dict': {'module.' + key: tensor},
    ...}`` checkpoint strictly into ``model``.

    Returns the checkpoint's other entries (e.g. the recorded accuracy), without the
    optimiser state. Checkpoints older than PyTorch 0.4.1 lack BatchNorm's
    ``num_batches_tracked``; PyTorch fills it in (it only matters in training with
    ``momentum=None``), every other key must match.
    """
    checkpoint = torch.load(
        fetch(relpath, verify=True), map_location="cpu", weights_only=True
    )
    state = {
        key.removeprefix("module."): value
        for key, value in checkpoint["state_dict"].items()
    }
    model.load_state_dict(state, strict=True)
    return {k: v for k, v in checkpoint.items() if k not in ("state_dict", "optimizer")}


def _source(relpath: str) -> str:
    source = manifest()["sources"][manifest()["files"][relpath][0]]
    return (
        f"github.com/{source['repo']} @ {source['commit'][:10]}:"
        f" {source['remote']}{relpath[len(source['local']):]}"
    )


@register(
    "mobilenet_v1_025_imagenet",
    "MobileNetV1-0.25 trained on ImageNet-1k (470,072 parameters)",
)
def mobilenet_v1_025_imagenet() -> LoadedModel:
    """MobileNetV1-0.25 on ImageNet: 224x224 images in [0, 1] -> 1000 logits; Grad-CAM
    layer ``stage3``."""
    net = MobileNetV1()
    meta = load_checkpoint(net, _MOBILENET)
    return LoadedModel(
        name="mobilenet_v1_025_imagenet",
        model=net.eval(),
        classes=imagenet_classes(),
        preprocess=partial(resize_center_crop, size=224),
        target_layer="stage3",
        info={
            "architecture": "MobileNetV1, width 0.25 (Howard et al. 2017)",
            "source": _source(_MOBILENET),
            "licence": "MIT",
            "parameters": parameter_count(net),
            "input": "(N, 3, 224, 224) in [0, 1]; ImageNet mean/std applied inside",
            # the trainer's ImageNet-val number
            "reported_top1": float(meta["best_acc1"]) / 100.0,
            "epochs": int(meta["epoch"]),
        },
    )


def _cifar_resnet(depth: int) -> LoadedModel:
    net = resnet(depth)
    meta = load_checkpoint(net, _RESNETS[depth])
    return LoadedModel(
        name=f"resnet{depth}_cifar10",
        model=net.eval(),
        classes=list(CIFAR10_CLASSES),
        preprocess=partial(resize_center_crop, size=32),
        target_layer="layer3",
        info={
            "architecture": (
                f"ResNet-{depth} for CIFAR-10, option-A shortcuts (He et al. 2016)"
            ),
            "source": _source(_RESNETS[depth]),
            "licence": "BSD-2-Clause",
            "parameters": parameter_count(net),
            "input": "(N, 3, 32, 32) in [0, 1]; ImageNet mean/std applied inside",
            # on the lossless CIFAR-10 test set
            "reported_top1": float(meta["best_prec1"]) / 100.0,
        },
    )


@register("resnet20_cifar10", "ResNet-20 trained on CIFAR-10 (269,722 parameters)")
def resnet20_cifar10() -> LoadedModel:
    """CIFAR-10 ResNet-20: 32x32 images in [0, 1] -> 10 logits; Grad-CAM layer
    ``layer3``."""
    return _cifar_resnet(20)


@register("resnet56_cifar10", "ResNet-56 trained on CIFAR-10 (853,018 parameters)")
def resnet56_cifar10() -> LoadedModel:
    """CIFAR-10 ResNet-56: 32x32 images in [0, 1] -> 10 logits; Grad-CAM layer
    ``layer3``."""
    return _cifar_resnet(56)


# The last convolutional block of the common torchvision families, for Grad-CAM.
_TARGET_LAYERS = (
    "layer4",
    "trunk_output",
    "Mixed_7c",
    "inception5b",
    "conv5",
    "features",
)


@register_family(
    "torchvision:", "any torchvision classifier whose weights are in the torch cache"
)
def torchvision_model(
    name: str, weights: str = "DEFAULT", download: bool = False
) -> LoadedModel:
    """A torchvision classifier, e.g. ``load("torchvision:resnet18")``, with its
    normalisation inside.

    The weights must already be in the torch hub cache (``$TORCH_HOME/hub/checkpoints``)
    unless ``download=True``; nothing is downloaded by default. The model is
    ``nn.Sequential(normalize, net)``, so its layers are named
    ``net.<torchvision name>``.

    Args:
        name: a torchvision model name (``torchvision.models.list_models()``).
        weights: the weights enum member, e.g. ``"IMAGENET1K_V1"`` or ``"DEFAULT"``.
        download: allow torchvision to download the weights.
    """
    import torchvision.models as tvm

    try:
        weights_enum = tvm.get_model_weights(name)
    except (ValueError, KeyError) as error:
        raise KeyError(
            f"unknown torchvision model {name!r}; see torchvision.models.list_models()"
        ) from error
    try:
        chosen = weights_enum[weights] if weights != "DEFAULT" else weights_enum.DEFAULT
    except KeyError as error:
        raise KeyError(
            f"{name} has no weights {weights!r}; choose from"
            f" {[w.name for w in weights_enum]}"
        ) from error
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(chosen.url).name
    if not cached.is_file() and not download:
        raise DataNotFoundError(
            f"the weights of torchvision:{name} ({chosen}) are not in the torch cache:"
            f" expected {cached}. Download them once on a machine with internet"
            f" ({chosen.url}), e.g. with load('torchvision:{name}', download=True), or"
            " set TORCH_HOME to a folder that has them."
        )
    net = tvm.get_model(name, weights=chosen)
    transform = chosen.transforms()
    size = int(transform.crop_size[0])
    model = nn.Sequential(
        OrderedDict(
            normalize=Normalize(tuple(transform.mean), tuple(transform.std)), net=net
        )
    )
    target = next(
        (f"net.{layer}" for layer in _TARGET_LAYERS if hasattr(net, layer)), None
    )
    top1 = chosen.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    return LoadedModel(
        name=f"torchvision:{name}",
        model=model.eval(),
        classes=list(chosen.meta["categories"]),
        preprocess=partial(resize_center_crop, size=size),
        target_layer=target,
        info={
            "source": f"torchvision {chosen}",
            "url": chosen.url,
            "parameters": parameter_count(net),
            "reported_top1": None if top1 is None else float(top1) / 100.0,
        },
    )


@torch.no_grad()
def measure_accuracy(
    model: nn.Module,
    dataset: Dataset,
    *,
    restrict_to: list[int] | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` (pairs of (image in [0, 1], label)).

    Args:
        model: a classifier returning logits (N, K); evaluated under ``no_grad`` in its
            current mode (registry models are in eval mode).
        dataset: e.g. an ``ImageSet`` or ``FileImageSet``; images must already have the
            model's size.
        restrict_to: only these output indices compete (e.g. Imagenette's 10 ImageNet
            classes): the prediction is ``restrict_to[argmax(logits[:, restrict_to])]``.
        batch_size: images per forward pass.
        progress: show a tqdm bar.

    Returns:
        The fraction of images whose prediction equals their label, in [0, 1].

    Example:
        >>> from xaisurvey.models import load
        >>> from xaisurvey.data import cifar10_subset
        >>> # 50 images
        >>> measure_accuracy(
        ...     load("resnet20_cifar10").model, cifar10_subset(per_class=5)
        ... )
        0.82
    """
    if len(dataset) == 0:
        raise ValueError("cannot measure accuracy on an empty data set")
    columns = (
        None if restrict_to is None else torch.tensor(restrict_to, dtype=torch.int64)
    )
    correct = 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for images, labels in tqdm(loader, desc="evaluating", disable=not progress):
        logits = model(images)
        if columns is None:
            predictions = logits.argmax(1)
        else:
            predictions = columns[logits[:, columns].argmax(1)]
        correct += int((predictions == labels).sum())
    return correct / len(dataset)
