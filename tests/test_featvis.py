"""Activation maximisation on micro-models whose maximising input is known in closed form."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaisurvey.featvis import (
    RECIPES,
    FeatVis,
    Recipe,
    _gaussian_blur,
    _Image,
    _random_transform,
    _total_variation,
    maximise_channel,
    maximise_class,
)


# A 3x3 kernel with mixed signs: on a 3x3 input (one output position) the channel's activation
# is <w, x> + b, linear, so over the box [0, 1]^9 it is maximised by x = 1 where w > 0, 0 elsewhere.
W0 = torch.tensor([[0.5, -1.0, 0.25], [-0.5, 1.0, -0.75], [0.8, -0.2, 0.3]])
W1 = -W0.flip(0)


def _linear_conv(*kernels: torch.Tensor) -> nn.Sequential:
    conv = nn.Conv2d(1, len(kernels), 3)
    with torch.no_grad():
        conv.weight.copy_(torch.stack(kernels)[:, None])
        conv.bias.copy_(torch.arange(len(kernels), dtype=torch.float32) * 0.1)
    return nn.Sequential(conv)


def test_naive_ascent_reaches_the_box_maximiser_exactly():
    net = _linear_conv(W0)
    result = maximise_channel(net, "0", 0, size=3, steps=60, in_channels=1)
    expected = (W0 > 0).float()
    assert torch.equal(result.images[0, 0], expected)
    assert result.objective.item() == pytest.approx(W0[W0 > 0].sum().item(), abs=1e-6)


def test_l2_penalty_gives_the_closed_form_maximiser():
    # maximise <w, x> - l2 * mean((x - 0.5)^2) over 9 pixels: x* = 0.5 + 9 w / (2 l2)
    l2 = 45.0
    net = _linear_conv(W0)
    result = maximise_channel(net, "0", 0, recipe=Recipe(l2=l2), size=3, steps=300, lr=0.02, in_channels=1)
    expected = 0.5 + 9 * W0 / (2 * l2)
    assert torch.allclose(result.images[0, 0], expected, atol=5e-3)


def test_channels_are_batched_and_kept_in_the_order_asked():
    net = _linear_conv(W0, W1)
    result = maximise_channel(net, net[0], [1, 0], size=3, steps=60, in_channels=1)
    assert result.targets == [1, 0]
    assert torch.equal(result.images[0, 0], (W1 > 0).float())
    assert torch.equal(result.images[1, 0], (W0 > 0).float())
    assert result.objective.tolist() == pytest.approx([W1[W1 > 0].sum().item() + 0.1, W0[W0 > 0].sum().item()], abs=1e-6)


def test_fourier_parameterisation_finds_the_same_sign_pattern():
    net = _linear_conv(W0)
    result = maximise_channel(net, "0", 0, recipe=Recipe(param="fourier"), size=3, steps=60, lr=0.2, in_channels=1)
    image = result.images[0, 0]
    assert ((image > 0.5) == (W0 > 0)).all()
    assert result.trace[-1, 0] > result.trace[0, 0] + 1.0


def test_class_logit_maximiser_of_a_linear_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(9, 4))
    result = maximise_class(net, [2, 0], size=3, steps=60, in_channels=1)
    weight = net[1].weight.detach()
    assert torch.equal(result.images[0, 0].flatten(), (weight[2] > 0).float())
    assert torch.equal(result.images[1, 0].flatten(), (weight[0] > 0).float())
    assert result.objective[0].item() == pytest.approx((weight[2].clamp(min=0).sum() + net[1].bias[2]).item(), abs=1e-5)


def _small_cnn() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_increases_the_objective(name):
    net = _small_cnn().eval()
    result = maximise_channel(net, "3", [0, 5], recipe=RECIPES[name], size=24, steps=40)
    assert isinstance(result, FeatVis)
    assert result.images.shape == (2, 3, 24, 24)
    assert result.trace.shape == (40, 2)
    assert 0.0 <= result.images.min() and result.images.max() <= 1.0
    assert (result.trace[-5:].mean(0) > result.trace[:5].mean(0)).all()
    assert (result.objective > result.trace[0]).all()


def test_same_seed_same_images_other_seed_other_images():
    net = _small_cnn().eval()
    recipe = RECIPES["Fourier + transforms"]
    a = maximise_class(net, [1, 3], recipe=recipe, size=16, steps=10, seed=3)
    b = maximise_class(net, [1, 3], recipe=recipe, size=16, steps=10, seed=3)
    c = maximise_class(net, [1, 3], recipe=recipe, size=16, steps=10, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.trace, b.trace)
    assert not torch.equal(a.images, c.images)


def _snapshot(net: nn.Module):
    return (
        [m.training for m in net.modules()],
        [p.requires_grad for p in net.parameters()],
        [p.grad for p in net.parameters()],
        {k: v.clone() for k, v in net.state_dict().items()},
    )


def _assert_untouched(net: nn.Module, before) -> None:
    training, flags, grads, state = before
    assert [m.training for m in net.modules()] == training
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is g for p, g in zip(net.parameters(), grads))
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in net.modules())


def test_model_is_left_exactly_as_it_was():
    net = _small_cnn().train()
    net[0].weight.requires_grad_(False)
    net[3].weight.grad = torch.ones_like(net[3].weight)
    before = _snapshot(net)
    maximise_channel(net, "1", 2, recipe=RECIPES["transforms + blur"], size=16, steps=5)
    maximise_class(net, 4, size=16, steps=5)
    _assert_untouched(net, before)


def test_model_is_restored_after_an_error():
    net = _small_cnn().train()
    before = _snapshot(net)
    with pytest.raises(ValueError, match="channel 9 is out of range"):
        maximise_channel(net, "3", [0, 9], size=16, steps=5)
    with pytest.raises(ValueError, match="class 5 is out of range"):
        maximise_class(net, 5, size=16, steps=5)
    _assert_untouched(net, before)


def test_works_inside_no_grad():
    net = _linear_conv(W0)
    with torch.no_grad():
        result = maximise_channel(net, "0", 0, size=3, steps=50, in_channels=1)
    assert result.trace[-1, 0] > result.trace[0, 0]


class _Explodes(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("layers after the maximised one must not run")


def test_forward_pass_stops_at_the_layer():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), _Explodes())
    result = maximise_channel(net, "1", [0, 1, 2, 3], size=8, steps=3)
    assert result.images.shape == (4, 3, 8, 8)


def test_flat_layer_output_is_a_unit():
    net = nn.Sequential(nn.Flatten(), nn.Linear(9, 3))
    result = maximise_channel(net, "1", 1, size=3, steps=60, in_channels=1)
    assert torch.equal(result.images[0, 0].flatten(), (net[1].weight[1].detach() > 0).float())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layer="nope", channels=0), "no layer named 'nope'"),
        (dict(layer="0", channels=-1), "non-negative ints"),
        (dict(layer="0", channels=[]), "at least one channel"),
        (dict(layer="0", channels=0, steps=0), "steps must be a positive int"),
        (dict(layer="0", channels=0, size=0), "size must be"),
        (dict(layer="0", channels=0, lr=0.0), "lr must be > 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        maximise_channel(_linear_conv(W0), in_channels=1, **kwargs)


def test_layer_with_tuple_output_is_refused():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    net = nn.Sequential(Pair())
    with pytest.raises(ValueError, match="need \\(N, K, h, w\\)"):
        maximise_channel(net, "0", 0, size=4, steps=1)


def test_recipe_validation():
    with pytest.raises(ValueError, match="param must be"):
        Recipe(param="wavelet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jitter is a number of pixels"):
        Recipe(jitter=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scales"):
        Recipe(scales=())
    with pytest.raises(ValueError, match="blur_every needs param='pixel'"):
        Recipe(param="fourier", blur_every=2)
    assert not Recipe().transforms and Recipe(degrees=5).transforms


def test_total_variation_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    # vertical differences |1-0|, |1-1| -> mean 0.5; horizontal |1-0|, |1-1| -> mean 0.5
    assert _total_variation(x).tolist() == [1.0]
    assert _total_variation(torch.ones(2, 3, 5, 5)).tolist() == [0.0, 0.0]


def test_identity_transform_changes_nothing():
    x = torch.rand(2, 3, 10, 12)
    same = _random_transform(x, Recipe(scales=(1.0, 1.0)), torch.Generator().manual_seed(0))
    assert torch.allclose(same, x, atol=1e-5)


def test_integer_jitter_is_a_shift():
    x = torch.rand(1, 1, 9, 9)
    shifted = _random_transform(x, Recipe(jitter=2), torch.Generator().manual_seed(0))
    # an integer shift moves whole pixels: the interior matches x displaced by some (dy, dx)
    matches = [
        (dy, dx)
        for dy in range(-2, 3)
        for dx in range(-2, 3)
        if torch.allclose(shifted[..., 2:-2, 2:-2], x[..., 2 - dy:7 - dy, 2 - dx:7 - dx], atol=1e-5)
    ]
    assert len(matches) == 1


def test_gaussian_blur_keeps_constants_and_smooths():
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(_gaussian_blur(flat, 1.0), flat)
    noise = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert _total_variation(_gaussian_blur(noise, 1.0)) < 0.5 * _total_variation(noise)


def test_fourier_image_starts_near_grey_and_zero_spectrum_is_grey():
    image = _Image(2, 3, 12, 10, "fourier", torch.Generator().manual_seed(0))
    x = image()
    assert x.shape == (2, 3, 12, 10)
    assert (x - 0.5).abs().max() < 0.25
    with torch.no_grad():
        image.data.zero_()
    assert torch.equal(image(), torch.full((2, 3, 12, 10), 0.5))
