"""MobileNetV1 with width multiplier 0.25, the ImageNet classifier of the book's worked
examples.

Architecture (Howard et al. 2017, "MobileNets"), laid out to match the pretrained
checkpoint:

- ``conv_bn(i, o, s)``: 3x3 convolution (stride s, padding 1, no bias), BatchNorm, ReLU;
- ``conv_dw(i, o, s)``: depthwise 3x3 convolution (groups = i, stride s) + BatchNorm +
  ReLU, then pointwise 1x1 convolution to o channels + BatchNorm + ReLU;
- ``stage1``: conv_bn(3, 8, 2), conv_dw 8->16, 16->32 (s2), 32->32, 32->64 (s2), 64->64;
- ``stage2``: conv_dw 64->128 (s2), then five conv_dw 128->128;
- ``stage3``: conv_dw 128->256 (s2), conv_dw 256->256;
- ``avg`` global average pooling, ``fc`` linear 256 -> 1000.

A 224x224 input gives 7x7 maps after ``stage3`` (total stride 32). 470,072 parameters.
The model normalises its [0, 1] input with the ImageNet mean and std itself (buffers
that are not saved in the state dict, so the original checkpoint loads with
``strict=True``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Normalize", "MobileNetV1", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``x`` is (N, C, H, W) in [0, 1].

    ``mean`` and ``std`` are non-persistent buffers: they follow ``.to(device)`` but are
    not in the state dict, so checkpoints trained without this layer still load
    strictly.
    """

    def __init__(
        self,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if len(mean) != len(std) or min(std) <= 0:
            raise ValueError(
                f"mean and std need one entry per channel and std > 0, got {mean},"
                f" {std}"
            )
        self.register_buffer(
            "mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std).view(1, -1, 1, 1), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"expected images of shape (N, {self.mean.shape[1]}, H, W), got"
                f" {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return (
            f"mean={tuple(self.mean.flatten().tolist())},"
            f" std={tuple(self.std.flatten().tolist())}"
        )


def _conv_bn(inp: int, out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU(inplace=False),
    )


def _conv_dw(inp: int, out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        # depthwise: one filter per channel
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.ReLU(inplace=False),
        nn.Conv2d(inp, out, 1, 1, 0, bias=False),  # pointwise: mixes channels
        nn.BatchNorm2d(out),
        nn.ReLU(inplace=False),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1-0.25 for 224x224 ImageNet images in [0, 1]; output: (N, num_classes)
    logits.

    ReLUs are not in-place, so hooks and gradient-based explanations see every
    activation intact.

    Example:
        >>> net = MobileNetV1().eval()
        >>> net(torch.rand(2, 3, 224, 224)).shape
        torch.Size([2, 1000])
        >>> sum(p.numel() for p in net.parameters())
        470072
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            _conv_dw(64, 128, 2), *[_conv_dw(128, 128, 1) for _ in range(5)]
        )
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(256, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage3(self.stage2(self.stage1(self.normalize(x))))
        return self.fc(torch.flatten(self.avg(x), 1))
