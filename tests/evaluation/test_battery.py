"""The battery end to end on tiny untrained models (seconds), and its cache."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from xaisurvey.evaluation import battery as B
from xaisurvey.models.small import GapCNN, MnistCNN


class TinyImageNet(nn.Module):
    """A 3x32x32 classifier with named blocks (like MobileNet's stage1..stage3, avg, fc)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.stage3 = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.avg(self.stage3(self.stage1(x))).flatten(1))


def tiny_data(config: B.BatteryConfig) -> B.BatteryData:
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mnist, memoriser, img, world = MnistCNN().eval(), MnistCNN().eval(), TinyImageNet().eval(), GapCNN(3).eval()
    x_img = torch.rand(config.n_faithfulness, 3, 32, 32, generator=g)
    with torch.no_grad():
        y_img = img(x_img).argmax(1)
    masks = torch.zeros(config.n_localisation, 64, 64, dtype=torch.bool)
    masks[:, 10:20, 30:40] = True
    return B.BatteryData(
        mnist=mnist, memoriser=memoriser, mnist_layer="features.conv2",
        mnist_x=torch.rand(config.n_small, 1, 28, 28, generator=g), mnist_y=torch.arange(config.n_small) % 10,
        imagenet=img, imagenet_layer="stage3", imagenet_x=x_img, imagenet_y=y_img, imagenet_other=(y_img + 1) % 5,
        world=world, world_layer="features.block4", world_x=torch.rand(config.n_localisation, 3, 64, 64, generator=g),
        world_y=torch.arange(config.n_localisation) % 3, world_masks=masks, forward_seconds=1e-3,
        spec={"tiny": 1}, info={})


CONFIG = B.BatteryConfig(n_small=4, n_faithfulness=6, n_localisation=4, deletion_steps=4, road_fractions=(0.5,),
                         smooth_samples=2, fragility_tries=1, fragility_k=20)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAISURVEY_CACHE", str(tmp_path))
    return tmp_path


def test_battery_end_to_end_and_cache(cache):
    data = tiny_data(CONFIG)
    battery = B.run_battery(["saliency", "grad_cam", "cam"], config=CONFIG, data=data)
    assert battery.methods == ["saliency", "grad_cam", "cam"]
    assert battery.baselines == ["random", "centre", "sobel"]
    for name in battery.methods + battery.baselines:
        result = battery.results[name]
        for metric, (key, _, _) in B.METRICS.items():
            if name == "cam" and key in ("mprt_mnist_final", "smooth_mprt", "data_randomisation", "invariance"):
                continue  # CAM needs global average pooling: the MNIST CNN has none
            mean, low, high = battery.interval(name, metric)
            assert np.isfinite(mean) and low <= mean <= high, (name, metric)
    # CAM on the MNIST CNN (no GAP) is recorded as an error, not a crash
    assert "mprt_mnist" in battery.results["cam"].errors
    assert battery.cell("cam", "randomisation (MNIST)") == "n/a"
    # the baselines ignore the model: identical maps after randomisation and on the memoriser
    for name in ("centre", "sobel", "random"):
        assert battery.interval(name, "randomisation")[0] == pytest.approx(1.0)
        assert battery.interval(name, "data randomisation")[0] == pytest.approx(1.0)
        assert battery.interval(name, "invariance")[0] == pytest.approx(0.0, abs=1e-6)
    # the centre map puts no mass outside... it scores its known pointing result: the peak is at (31.5, 31.5)
    assert battery.interval("centre", "pointing game")[0] == 0.0
    # Grad-CAM's gradients are invariant to an absorbed shift (the function is unchanged)
    assert battery.interval("grad_cam", "invariance")[0] < 1e-4
    # Binder et al.'s parameter noise passes the randomisation test
    assert abs(float(battery.binder["mprt_mnist_final"].mean())) < 0.2
    assert sorted(battery.ranking("deletion")) == sorted(battery.methods)

    # second run: everything from the cache, same values
    again = B.run_battery(["saliency", "grad_cam", "cam"], config=CONFIG, data=data)
    assert all(r.from_cache for r in again.results.values())
    assert torch.equal(again.results["saliency"].values["deletion"], battery.results["saliency"].values["deletion"])
    # another configuration is another key
    other = B.run_battery(["saliency"], config=B.BatteryConfig(**{**CONFIG.__dict__, "seed": 1}), data=data,
                          baselines=False)
    assert not other.results["saliency"].from_cache


def test_a_changed_method_is_recomputed_alone(cache, monkeypatch):
    data = tiny_data(CONFIG)
    B.run_battery(["saliency", "grad_cam"], config=CONFIG, data=data, baselines=False)
    from xaisurvey.attribution import registry
    spec = registry.get("saliency")
    monkeypatch.setitem(registry.METHODS, "saliency",
                        type(spec)(**{**spec.__dict__, "evaluation": {"absolute": False}}))
    again = B.run_battery(["saliency", "grad_cam"], config=CONFIG, data=data, baselines=False)
    assert not again.results["saliency"].from_cache
    assert again.results["grad_cam"].from_cache
