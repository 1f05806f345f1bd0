"""Small models shared by the attribution tests."""
from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyGapNet(nn.Module):
    """conv -> BN -> ReLU -> conv -> ReLU -> GAP -> linear: a CAM-compatible head, a few hundred weights."""

    def __init__(self, channels: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
            nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture
def tiny() -> TinyGapNet:
    torch.manual_seed(0)
    net = TinyGapNet()
    # Non-trivial BN statistics, so a forgotten eval() would change both outputs and buffers.
    with torch.no_grad():
        net.features[1].running_mean.uniform_(-0.5, 0.5)
        net.features[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(1))


