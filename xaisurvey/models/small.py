"""The small CNNs trained in the book (the architectures only; :mod:`.trained` trains
and registers them).

Every layer has a readable name (``features.block1.conv``, ``head.fc``...) because
attribution methods hook layers by name, and every ReLU is its own ``nn.ReLU`` module
(not in place), so Guided Backprop and VisualBackProp can find and hook each one. All
networks take images in [0, 1]; the BatchNorm after the first convolution (or the data's
own range) does the rest.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["RoadCNN", "MnistCNN", "GapCNN", "SteeringCNN", "TerrainCNN"]


def _conv_block(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    padding: int,
    batch_norm: bool = True,
    pool: bool = False,
) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = [
        ("conv", nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=not batch_norm))
    ]
    if batch_norm:
        layers.append(("bn", nn.BatchNorm2d(c_out)))
    layers.append(("relu", nn.ReLU()))
    if pool:
        layers.append(("pool", nn.MaxPool2d(2, 2)))
    return nn.Sequential(OrderedDict(layers))


class RoadCNN(nn.Module):
    """The 96x96 road classifier of the VisualBackProp exercise (Bojarski et al. 2016,
    arXiv:1611.05418).

    ``features``: block0 conv 1x1 to 8 maps; block1-3 conv 3x3 to 32, 32, 64 maps; each
    conv is followed by BatchNorm2d and ReLU. ``downsample="conv"``: blocks 1-3 use
    stride 2, padding 1 (96 -> 48 -> 24 -> 12). ``downsample="maxpool"``: stride 1,
    padding 1, then MaxPool2d(2, 2) after the ReLU (the exercise's bonus variant; same
    map sizes). Then global max pooling (``pool``) and the head: linear 64 -> 512,
    BatchNorm1d, ReLU, linear 512 -> classes.

    Shapes: (N, 3, 96, 96) in [0, 1] -> (N, classes) logits (any input side works: the
    pool is global).

    Example:
        >>> RoadCNN()(torch.rand(2, 3, 96, 96)).shape
        torch.Size([2, 2])
        >>> RoadCNN(downsample="maxpool").features.block3.pool
        MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    """

    def __init__(
        self, num_classes: int = 2, downsample: Literal["conv", "maxpool"] = "conv"
    ) -> None:
        super().__init__()
        if downsample not in ("conv", "maxpool"):
            raise ValueError(
                f"downsample must be 'conv' or 'maxpool', got {downsample!r}"
            )
        self.downsample = downsample
        stride, pool = (2, False) if downsample == "conv" else (1, True)
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("block0", _conv_block(3, 8, 1, 1, 0)),
                    ("block1", _conv_block(8, 32, 3, stride, 1, pool=pool)),
                    ("block2", _conv_block(32, 32, 3, stride, 1, pool=pool)),
                    ("block3", _conv_block(32, 64, 3, stride, 1, pool=pool)),
                ]
            )
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(64, 512, bias=False)),
                    ("bn", nn.BatchNorm1d(512)),
                    ("relu", nn.ReLU()),
                    ("fc2", nn.Linear(512, num_classes)),
                ]
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x)))


class MnistCNN(nn.Module):
    """A small MNIST CNN like the one of the sanity-checks paper (Adebayo et al. 2018):
    conv-relu-conv-relu-pool-fc-relu-fc.

    ``features``: conv1 3x3 1 -> 16, relu1, conv2 3x3 16 -> 32, relu2, pool (max 2x2);
    ``classifier``: flatten, fc1 (32*12*12 -> 128), relu3, fc2 (128 -> 10).

    Shapes: (N, 1, 28, 28) in [0, 1] -> (N, 10) logits.

    Example:
        >>> MnistCNN()(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: tuple[int, int] = (16, 32),
        hidden: int = 128,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(1, c1, 3)),
                    ("relu1", nn.ReLU()),
                    ("conv2", nn.Conv2d(c1, c2, 3)),
                    ("relu2", nn.ReLU()),
                    ("pool", nn.MaxPool2d(2, 2)),
                ]
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(c2 * 12 * 12, hidden)),
                    ("relu3", nn.ReLU()),
                    ("fc2", nn.Linear(hidden, num_classes)),
                ]
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class GapCNN(nn.Module):
    """A CNN with a global-average-pooling head, the architecture CAM needs
    (Zhou et al. 2016).

    ``features``: block1 conv 3x3 -> 16 + BN + ReLU + maxpool 2, block2 -> 32 + BN +
    ReLU + maxpool 2, block3 -> ``width`` (32) + BN + ReLU, block4 -> ``width`` + BN +
    ReLU (the CAM layer, 1/4 of the input side); ``gap`` (adaptive average pool to 1x1),
    ``flatten``, ``fc`` (``width`` -> classes). The class score is ``fc.weight[c] .
    mean_{y,x} A(y, x) + fc.bias[c]``, so the CAM ``sum_k w_ck A_k`` is exact.

    Shapes: (N, 3, H, W) in [0, 1] -> (N, classes) logits.

    Example:
        >>> GapCNN(4)(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 4])
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("block1", _conv_block(in_channels, 16, 3, 1, 1, pool=True)),
                    ("block2", _conv_block(16, 32, 3, 1, 1, pool=True)),
                    ("block3", _conv_block(32, width, 3, 1, 1)),
                    ("block4", _conv_block(width, width, 3, 1, 1)),
                ]
            )
        )
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.gap(self.features(x))))


class SteeringCNN(nn.Module):
    """A steering-angle regression CNN in the spirit of PilotNet (Bojarski et al. 2016),
    scaled down.

    ``features``: block1 conv 5x5 stride 2 -> 16, block2 conv 5x5 stride 2 -> 24, block3
    conv 3x3 stride 2 -> 32, block4 conv 3x3 -> 32 (each conv + BN + ReLU); ``head``:
    flatten, fc1 -> 64, relu, fc2 -> 1. ``head="gap"`` replaces the flattening head by
    global average pooling and one linear layer (a second architecture to compare
    explanations across).

    Shapes: (N, 3, 64, 128) in [0, 1] -> (N,) steering angles in degrees.

    Example:
        >>> SteeringCNN()(torch.rand(2, 3, 64, 128)).shape
        torch.Size([2])
    """

    def __init__(
        self,
        image_size: tuple[int, int] = (64, 128),
        head: Literal["dense", "gap"] = "dense",
    ) -> None:
        super().__init__()
        if head not in ("dense", "gap"):
            raise ValueError(f"head must be 'dense' or 'gap', got {head!r}")
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("block1", _conv_block(3, 16, 5, 2, 0)),
                    ("block2", _conv_block(16, 24, 5, 2, 0)),
                    ("block3", _conv_block(24, 32, 3, 2, 0)),
                    ("block4", _conv_block(32, 32, 3, 1, 0)),
                ]
            )
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 3, *image_size)).numel()
        if head == "dense":
            self.head = nn.Sequential(
                OrderedDict(
                    [
                        ("flatten", nn.Flatten()),
                        ("fc1", nn.Linear(flat, 64)),
                        ("relu", nn.ReLU()),
                        ("fc2", nn.Linear(64, 1)),
                    ]
                )
            )
        else:
            self.head = nn.Sequential(
                OrderedDict(
                    [
                        ("gap", nn.AdaptiveAvgPool2d(1)),
                        ("flatten", nn.Flatten()),
                        ("fc", nn.Linear(32, 1)),
                    ]
                )
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))[:, 0]


class TerrainCNN(nn.Module):
    """A traversability classifier for height-map patches (the quarry robot's task).

    ``features``: block1 conv 3x3 1 -> 16 + BN + ReLU + maxpool 2, block2 -> 32 + BN +
    ReLU + maxpool 2, block3 -> 32 + BN + ReLU; ``head``: flatten, fc1 -> 64, relu, fc2
    -> 2. The dense head keeps *where* a feature is (an obstacle matters only on the
    robot's path).

    Shapes: (N, 1, S, S) heights mapped to [0, 1] -> (N, 2) logits (0 = not traversable,
    1 = traversable).

    Example:
        >>> TerrainCNN(32)(torch.rand(2, 1, 32, 32)).shape
        torch.Size([2, 2])
    """

    def __init__(self, size: int = 32, num_classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("block1", _conv_block(1, 16, 3, 1, 1, pool=True)),
                    ("block2", _conv_block(16, 32, 3, 1, 1, pool=True)),
                    ("block3", _conv_block(32, 32, 3, 1, 1)),
                ]
            )
        )
        self.head = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(32 * (size // 4) ** 2, 64)),
                    ("relu", nn.ReLU()),
                    ("fc2", nn.Linear(64, num_classes)),
                ]
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
