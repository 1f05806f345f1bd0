"""ResNets for CIFAR-10 (He et al. 2016, section 4.2), with option-A (zero-padding)
shortcuts.

``resnet(depth)`` has depth = 6n + 2 layers: a 3x3 convolution to 16 maps, three stages
of n basic blocks with 16, 32 and 64 maps (the second and third halve the resolution),
global average pooling and a linear layer to 10 classes. ResNet-20 has n = 3 (269,722
parameters), ResNet-56 n = 9. A block is ``relu(bn2(conv2(relu(bn1(conv1(x))))) +
shortcut(x))``; where the shape changes, the option-A shortcut subsamples x by 2 and
pads the new channels with zeros (no parameters). Layer names follow the pretrained
checkpoints (``conv1``, ``bn1``, ``layer1..3``, ``linear``). Inputs are (N, 3, 32, 32)
in [0, 1]; the model normalises them with the ImageNet mean and std, as the checkpoints
were trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mobilenet import Normalize

__all__ = ["CifarResNet", "BasicBlock", "resnet"]


class _PadShortcut(nn.Module):
    """Option A: take every second pixel and zero-pad the channels (from ``inp`` to
    ``out``)."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.pad = (out - inp) // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection."""

    def __init__(self, inp: int, out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()  # separate modules so hooks can tell them apart
        self.shortcut: nn.Module = (
            _PadShortcut(inp, out) if stride != 1 or inp != out else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(y)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """A CIFAR ResNet with ``blocks_per_stage`` = n basic blocks per stage
    (depth 6n + 2).

    Example:
        >>> net = CifarResNet(3).eval()
        >>> net(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> sum(p.numel() for p in net.parameters())
        269722
    """

    def __init__(self, blocks_per_stage: int, num_classes: int = 10) -> None:
        super().__init__()
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
        self.normalize = Normalize()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(16, 16, blocks_per_stage, 1)
        self.layer2 = self._stage(16, 32, blocks_per_stage, 2)
        self.layer3 = self._stage(32, 64, blocks_per_stage, 2)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)

    @staticmethod
    def _stage(inp: int, out: int, blocks: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            BasicBlock(inp, out, stride),
            *[BasicBlock(out, out) for _ in range(blocks - 1)],
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(self.avg(x), 1))


def resnet(depth: int, num_classes: int = 10) -> CifarResNet:
    """The CIFAR ResNet of the given depth (20, 32, 44, 56, 110, ...: 6n + 2)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, ...), got {depth}"
        )
    return CifarResNet((depth - 2) // 6, num_classes)
