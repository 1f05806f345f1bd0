"""The explorer page's data and HTML: maps as stored, errors recorded, nothing fetched from outside."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import torch
from torch import nn

from xaisurvey.attribution import registry
from xaisurvey.explorer import ExplorerData, colour_table, compute_explorer, explorer_grid, explorer_html


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stage = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avg(self.stage(x)).flatten(1))


@pytest.fixture(scope="module")
def data() -> ExplorerData:
    g = torch.Generator().manual_seed(0)
    images = {"a": torch.rand(3, 16, 16, generator=g), "b": torch.rand(3, 16, 16, generator=g)}
    return compute_explorer(Net(), images, ["x", "y", "z"], methods=["grad_cam", "saliency", "cam"],
                            layers=("stage", "fc"), top_classes=2, map_size=8)


def test_maps_are_the_methods_maps_scaled_and_pooled(data) -> None:
    assert data.methods == ["grad_cam", "saliency", "cam"]
    assert data.layers == {"grad_cam": ["stage", "fc"], "saliency": ["-"], "cam": ["-"]}
    cls = data.classes["a"][1][0]
    stored = data.maps[ExplorerData.key("a", "saliency", cls, "-")]
    g = torch.Generator().manual_seed(0)  # the fixture's first image
    original = torch.rand(3, 16, 16, generator=g)
    expected = registry.explain("saliency", Net(), original.unsqueeze(0), [cls])[0]
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    pooled = torch.nn.functional.adaptive_avg_pool2d(expected[None, None], 8)[0, 0]
    assert stored.dtype == np.uint8 and stored.shape == (8, 8)
    assert np.abs(stored.astype(int) - (pooled * 255).round().numpy().astype(int)).max() <= 1


def test_a_method_that_cannot_explain_is_recorded_not_skipped(data) -> None:
    # Grad-CAM at the classifier: not a spatial map, so it raises; the page says so.
    assert "a|grad_cam|fc" in data.errors and "not a spatial map" in data.errors["a|grad_cam|fc"]
    assert not any(key.endswith("|fc") for key in data.maps)


def test_html_is_self_contained_and_holds_every_map(data) -> None:
    page = explorer_html(data, element_id="exp")
    assert not re.search(r"(src|href)=\"https?://", page) and "cdn" not in page.lower()
    for key, values in data.maps.items():
        assert f'"{key}": "{base64.b64encode(values.tobytes()).decode()}"' in page
    assert str(colour_table()[0]) .replace(" ", "") in page.replace(" ", "")


def test_grid_and_bad_arguments(data) -> None:
    fig = explorer_grid(data, "a")
    assert len([ax for ax in fig.axes if ax.images]) == len(data.methods)
    with pytest.raises(KeyError, match="unknown photo 'c'"):
        explorer_grid(data, "c")
    with pytest.raises(ValueError, match="top_classes must be an int >= 1"):
        compute_explorer(Net(), {"a": torch.rand(3, 8, 8)}, ["x", "y", "z"], top_classes=0)
    with pytest.raises(ValueError, match="images must name at least one photo"):
        compute_explorer(Net(), {}, ["x"])
