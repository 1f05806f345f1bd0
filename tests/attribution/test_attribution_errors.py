"""Bad input gets a clear error that names the problem."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaisurvey.attribution import cam, grad_cam, guided_backprop, guided_grad_cam, saliency, smoothgrad
from xaisurvey.attribution._core import as_target, resolve_layer

ALL = {
    "saliency": lambda m, x, t, **k: saliency(m, x, t, **k),
    "smoothgrad": lambda m, x, t, **k: smoothgrad(m, x, t, samples=2, **k),
    "cam": lambda m, x, t, **k: cam(m, x, t, **k),
    "grad_cam": lambda m, x, t, **k: grad_cam(m, x, t, layer="features.4", **k),
    "guided_backprop": lambda m, x, t, **k: guided_backprop(m, x, t, **k),
    "guided_grad_cam": lambda m, x, t, **k: guided_grad_cam(m, x, t, layer="features.4", **k),
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.rand(3, 12, 12), ValueError, r"4 dimensions \(N, C, H, W\).*unsqueeze"),
        (torch.rand(2, 1, 12, 12), ValueError, "x has 1 channels but the first convolution that runs, 'features.0', expects 3"),
        (torch.rand(0, 3, 12, 12), ValueError, "empty batch"),
        (torch.randint(0, 255, (2, 3, 12, 12), dtype=torch.uint8), TypeError, "floating-point"),
        ([[0.0]], TypeError, "must be a torch.Tensor"),
    ],
)
def test_bad_images(name, bad, error, message, tiny) -> None:
    with pytest.raises(error, match=message):
        ALL[name](tiny, bad, 0)


@pytest.mark.parametrize("name", ALL)
def test_target_errors(name, tiny, images) -> None:
    with pytest.raises(ValueError, match="target 9 is out of range for a (model|classifier) with 4 outputs"):
        ALL[name](tiny, images, 9)
    with pytest.raises(ValueError, match="got 2 targets for 3 images"):
        ALL[name](tiny, images, [0, 1])
    with pytest.raises(ValueError, match="got 4 targets for 3 images"):
        ALL[name](tiny, images, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="must be >= 0"):
        ALL[name](tiny, images, -1)
    with pytest.raises(TypeError, match="integer class indices"):
        ALL[name](tiny, images, torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("name", ["grad_cam", "guided_grad_cam"])
def test_layer_errors(name, tiny, images) -> None:
    method = {"grad_cam": grad_cam, "guided_grad_cam": guided_grad_cam}[name]
    with pytest.raises(ValueError, match="no layer named 'layer4'"):
        method(tiny, images, 0, layer="layer4")
    with pytest.raises(ValueError, match="not a module of this model"):
        method(tiny, images, 0, layer=nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match=r"layer 'fc' produces an output of shape \(3, 4\), not a spatial map"):
        method(tiny, images, 0, layer="fc")
    with pytest.raises(ValueError, match="weights must be one of 'mean', 'sum'"):
        method(tiny, images, 0, layer="features.4", weights="max")
    with pytest.raises(ValueError, match="upsample must be"):
        method(tiny, images, 0, layer="features.4", upsample="bicubic")


def test_layer_called_twice_is_rejected(images) -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.conv(self.conv(x)).mean((2, 3)))

    with pytest.raises(ValueError, match="called 2 times"):
        grad_cam(Twice(), images, 0, layer="conv")


def test_cam_needs_a_gap_head(images) -> None:
    flatten_head = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 12 * 12, 2))
    with pytest.raises(ValueError, match="no nn.AdaptiveAvgPool2d.*global-average-pooling head"):
        cam(flatten_head, images, 0)
    # A GAP followed by a hidden layer: the last linear layer's input is not the average of the maps.
    hidden_head = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)
    )
    with pytest.raises(ValueError, match="not the global average of the feature maps.*no GAP head"):
        cam(hidden_head, images, 0)
    # VGG-style 2x2 pooling: more classifier inputs than channels.
    vgg_head = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 2))
    with pytest.raises(ValueError, match="no GAP head"):
        cam(vgg_head, images, 0)
    with pytest.raises(TypeError, match="not a callable"):
        cam(hidden_head, images, lambda out: out[:, 0])


def test_callable_target_must_return_one_score_per_image(tiny, images) -> None:
    with pytest.raises(ValueError, match=r"one score per image, shape \(3,\), got shape \(3, 4\)"):
        saliency(tiny, images, lambda out: out)
    with pytest.raises(TypeError, match="must return a tensor"):
        saliency(tiny, images, lambda out: 1.0)


def test_class_targets_need_a_2d_output(images) -> None:
    seg = nn.Conv2d(3, 2, 1)  # a segmentation-like output (N, 2, H, W)
    with pytest.raises(ValueError, match="class-index targets need an output of shape"):
        saliency(seg, images, 0)
    # ... which a callable target handles: the summed score of class 1 over a region.
    out = saliency(seg, images, lambda o: o[:, 1, :4, :4].sum((1, 2)))
    assert out.shape == images.shape and out[:, :, 4:, :].abs().sum() == 0


def test_option_errors(tiny, images) -> None:
    with pytest.raises(ValueError, match="samples must be an int >= 1"):
        smoothgrad(tiny, images, 0, samples=0)
    with pytest.raises(ValueError, match="noise_level must be a finite number >= 0"):
        smoothgrad(tiny, images, 0, noise_level=-0.1)
    with pytest.raises(ValueError, match="rule must be one of guided, deconvnet, gradient"):
        guided_backprop(tiny, images, 0, rule="lrp")
    with pytest.raises(ValueError, match="how must be one of"):
        saliency(tiny, images, 0, reduce="median")
    with pytest.raises(ValueError, match="upsample must be 'bilinear' or 'nearest'"):
        guided_grad_cam(tiny, images, 0, layer="features.4", upsample=None)


def test_core_helpers_errors(tiny) -> None:
    with pytest.raises(TypeError, match="got a bool"):
        as_target(True, 2)
    with pytest.raises(TypeError, match="must hold ints"):
        as_target([0, 1.5], 2)
    with pytest.raises(ValueError, match="0-D or 1-D"):
        as_target(torch.zeros(2, 2, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="layer must be an nn.Module"):
        resolve_layer(tiny, 3)
    assert resolve_layer(tiny, tiny.features[3]) == ("features.3", tiny.features[3])
    assert resolve_layer(tiny, "features.3")[1] is tiny.features[3]
