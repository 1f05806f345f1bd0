"""SmoothGrad's batch_size bounds memory only: the map is the same for every batch size.

The noise of copy i of an image is fixed by the seed and i alone, so chunking the copies
differently (a batch that splits an image's copies, a batch larger than all copies, one copy per
batch) must give the same map, with class and callable targets, squared or not.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaisurvey.attribution import smoothgrad


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2), nn.Tanh(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).double()


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("target", [[0, 2, 1], lambda out: out[:, 1] - out[:, 0]], ids=["indices", "callable"])
def test_the_map_does_not_depend_on_batch_size(squared: bool, target: object) -> None:
    net = small_net()
    x = torch.rand(3, 3, 9, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    maps = [smoothgrad(net, x, target, samples=7, squared=squared, seed=3, batch_size=b) for b in (1, 4, 7, 8, 21, 64)]
    for other in maps[1:]:
        torch.testing.assert_close(other, maps[0], rtol=0, atol=1e-12)
    # and the noise really differs between copies: a different seed gives another map
    assert not torch.allclose(maps[0], smoothgrad(net, x, target, samples=7, squared=squared, seed=4))
