"""How much arithmetic LRP needs, counted (issue 15: "LRP costs at most 1.5x one forward and
backward pass").

Every LRP rule of a convolution is a modified gradient (Montavon et al. 2019): besides the
model's own forward convolution it needs the convolutions of its denominator and one transposed
convolution per term of its numerator. Counted in units of one forward convolution ``F`` of a
layer, with inputs >= 0 (after a ReLU):

* epsilon: the model's ``z``, one transposed convolution: ``2F`` (the floor's cost);
* alpha1-beta0 (``+``): ``z``, ``f(x, W+)``, one transposed: ``3F``;
* alpha2-beta1: ``z``, ``f(x, W+)``, two transposed: ``4F``;
* generalised gamma (zennit's): ``z``, ``f(x, W+)``, two transposed (``W`` and ``W+``): ``4F``;
* z^B (first layer): ``z``, ``f(l, W+)``, ``f(h, W-)``, three transposed: ``6F``, and here
  ``7F``: the rule recomputes ``f(x, W)`` with the BatchNorm folded into ``W`` (as zennit does after
  merging it) rather than reuse the BatchNorm's output, which differs from it by rounding;
* flat (first layer): ``z``, ``f(1, 1)``, one transposed: ``3F``.

The floor (a forward pass and a backward pass to the input) costs ``2F`` per layer. So the
arithmetic alone puts ``epsilon_plus_flat`` at 1.5x the floor and ``epsilon_gamma_box`` at about
2.1x (ResNet-18): the issue's 1.5x is the minimum for the first and below the minimum for the
second. These tests count the multiply-adds of each call (PyTorch's FLOP formulas, through a
dispatch mode) and check them against the hand count above: the implementation spends no
arithmetic beyond what its rules need.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from xaisurvey.attribution import lrp


class _CountFlops(TorchDispatchMode):
    """Sums PyTorch's FLOP formulas (convolutions, matrix products) over every op that runs.

    ``torch.utils.flop_counter.FlopCounterMode`` would do, but its module tracker refuses
    ``torch.autograd.grad`` (which the floor and LRP call): the same formulas, without it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def _flops(fn) -> int:  # noqa: ANN001
    with _CountFlops() as counter:
        fn()
    return counter.total


def _layer_flops(model: nn.Module, x: torch.Tensor) -> tuple[list[int], int]:
    """Forward FLOPs of every convolution in call order, and of the dense layers together."""
    convs: list[int] = []
    dense = [0]
    handles = []

    def conv_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        convs.append(_flops(lambda: module._conv_forward(inputs[0], module.weight, module.bias)))

    def dense_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        dense[0] += _flops(lambda: nn.functional.linear(inputs[0], module.weight, module.bias))

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(dense_hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return convs, dense[0]


#: Units of one forward convolution per rule (inputs >= 0), from the module docstring.
UNITS = {"epsilon": 2, "alpha1_beta0": 3, "alpha2_beta1": 4, "gamma": 4, "zb": 7, "flat": 3}
#: composite -> (rule of the first convolution, rule of the other convolutions)
COMPOSITE_RULES = {
    "epsilon_gamma_box": ("zb", "gamma"),
    "epsilon_plus_flat": ("flat", "alpha1_beta0"),
    "epsilon_plus": ("alpha1_beta0", "alpha1_beta0"),
    "epsilon_alpha2_beta1": ("alpha2_beta1", "alpha2_beta1"),
}


@pytest.fixture(scope="module")
def resnet() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # Inputs >= 0 everywhere after the first layer: the ReLUs see to it; the image itself is
    # signed only for z^B's bounds, which the hand count already includes.
    return model, torch.rand(2, 3, 64, 64)


def _floor(model: nn.Module, x: torch.Tensor) -> int:
    def run() -> None:
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xi)[:, 0].sum(), xi)

    return _flops(run)


def test_the_floor_is_two_forward_passes_of_arithmetic(resnet) -> None:  # noqa: ANN001
    model, x = resnet
    convs, dense = _layer_flops(model, x)
    forward = sum(convs) + dense
    assert _flops(lambda: model(x)) == forward
    assert _floor(model, x) == 2 * forward


@pytest.mark.parametrize("composite", sorted(COMPOSITE_RULES))
def test_lrp_spends_exactly_the_arithmetic_of_its_rules(resnet, composite: str) -> None:  # noqa: ANN001
    model, x = resnet
    convs, dense = _layer_flops(model, x)
    first, rest = COMPOSITE_RULES[composite]
    expected = UNITS[first] * convs[0] + UNITS[rest] * sum(convs[1:]) + UNITS["epsilon"] * dense
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counted = _flops(lambda: lrp(model, x, [0, 1], composite=composite))
    assert counted == expected, (composite, counted / expected)


def test_only_the_epsilon_rule_fits_1_5x_the_floor(resnet) -> None:  # noqa: ANN001
    """The issue's target, judged on arithmetic: epsilon 1.0x, epsilon_plus_flat 1.5x (the
    target exactly, before any memory traffic), epsilon_gamma_box above 2x."""
    model, x = resnet
    floor = _floor(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ratio = {name: _flops(lambda name=name: lrp(model, x, [0, 1], **options)) / floor
                 for name, options in {"epsilon": {"rule": "epsilon"},
                                       "epsilon_plus_flat": {"composite": "epsilon_plus_flat"},
                                       "epsilon_gamma_box": {"composite": "epsilon_gamma_box"}}.items()}
    assert ratio["epsilon"] == pytest.approx(1.0)
    assert 1.45 < ratio["epsilon_plus_flat"] <= 1.5
    assert ratio["epsilon_gamma_box"] > 2.0
