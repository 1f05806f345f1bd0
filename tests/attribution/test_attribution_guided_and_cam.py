"""Guided Backpropagation finds every ReLU and names what it cannot handle; CAM equals Grad-CAM on GAP heads."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xaisurvey.attribution import GuidedBackpropWarning, cam, grad_cam, guided_backprop, guided_grad_cam, minmax


def _body() -> tuple[nn.Conv2d, nn.Conv2d, nn.Linear]:
    torch.manual_seed(5)
    return nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1), nn.Linear(6, 3)


class ModuleReLU(nn.Module):
    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.c1, self.c2, self.fc = _body()
        self.act = nn.ReLU(inplace=inplace)

    def forward(self, x):
        return self.fc(self.act(self.c2(self.act(self.c1(x)))).mean((2, 3)))


class FunctionalReLU(nn.Module):
    def __init__(self, style: str) -> None:
        super().__init__()
        self.c1, self.c2, self.fc = _body()
        self.style = style

    def forward(self, x):
        h = self.c1(x)
        if self.style == "F.relu":
            h = F.relu(h)
        elif self.style == "torch.relu":
            h = torch.relu(h)
        elif self.style == "Tensor.relu_":
            h.relu_()
        elif self.style == "F.relu_inplace":
            F.relu(h, inplace=True)
        elif self.style == "F.relu_":
            F.relu_(h)
        h = self.c2(h)
        h = h.relu() if self.style != "F.relu_" else F.relu_(h)
        return self.fc(h.mean((2, 3)))


def manual_guided(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Reference: the same network written out with an explicit guided ReLU (no interception)."""

    class Guided(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g.clamp(min=0) * (z > 0)

    x = x.clone().requires_grad_(True)
    h = Guided.apply(model.c2(Guided.apply(model.c1(x))))
    model.fc(h.mean((2, 3)))[:, target].sum().backward()
    return x.grad


@pytest.mark.parametrize(
    "make",
    [
        lambda: ModuleReLU(False), lambda: ModuleReLU(True), lambda: FunctionalReLU("F.relu"),
        lambda: FunctionalReLU("torch.relu"), lambda: FunctionalReLU("Tensor.relu_"),
        lambda: FunctionalReLU("F.relu_inplace"), lambda: FunctionalReLU("F.relu_"),
    ],
    ids=["nn.ReLU", "nn.ReLU(inplace)", "F.relu", "torch.relu", "Tensor.relu_", "F.relu(inplace)", "F.relu_"],
)
def test_every_way_of_calling_relu_is_guided(make) -> None:
    model = make().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = guided_backprop(model, x, 1)
    expected = manual_guided(model, x, 1)
    assert torch.allclose(ours, expected, atol=1e-7)
    # ... and it differs from the plain gradient, so the rule really was applied.
    assert not torch.allclose(guided_backprop(model, x, 1, rule="gradient"), expected, atol=1e-4)
    assert torch.allclose(model(x), make().eval()(x))  # the forward pass itself is unchanged


class WithActivation(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.c1, self.c2, self.fc = _body()
        self.act = act

    def forward(self, x):
        return self.fc(torch.relu(self.c2(self.act(self.c1(x)))).mean((2, 3)))


@pytest.mark.parametrize(
    "act, name",
    [(nn.LeakyReLU(0.1), "leaky_relu"), (nn.SiLU(), "silu"), (nn.GELU(), "gelu"), (nn.ELU(), "elu"), (nn.Hardswish(), "hardswish")],
)
def test_other_activations_are_reported_not_silently_ignored(act, name) -> None:
    model = WithActivation(act).eval()
    x = torch.rand(1, 3, 8, 8)
    with pytest.warns(GuidedBackpropWarning, match=f"uses {name}, which the 'guided' rule does not apply to"):
        guided_backprop(model, x, 0)
    with pytest.warns(GuidedBackpropWarning, match=name):
        guided_grad_cam(model, x, 0, layer="c2")


def test_relu6_gets_the_guided_rule_with_its_upper_bound() -> None:
    z = torch.tensor([-1.0, 2.0, 7.0, 3.0], requires_grad=True)
    from xaisurvey.attribution.guided_backprop import relu_backward_rule

    with relu_backward_rule("guided"):
        y = F.relu6(z) + nn.ReLU6()(z) + F.hardtanh(z, 0.0, 6.0)
    (g,) = torch.autograd.grad(y @ torch.tensor([1.0, 1.0, 1.0, -1.0]), z)
    # active where 0 < z < 6 (entries 1 and 3); guided keeps only positive signal (entry 1); three terms.
    assert torch.equal(g, torch.tensor([0.0, 3.0, 0.0, 0.0]))


def test_a_model_without_relu_is_reported() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    with pytest.warns(GuidedBackpropWarning, match="no ReLU ran"):
        guided_backprop(model, torch.rand(1, 3, 6, 6), 0)


def test_guided_maps_are_nonnegative_where_the_input_gradient_flows_through_positive_first_layer() -> None:
    # Guided signals are >= 0 right below every ReLU; with a 1x1 first layer of positive weights the input map is >= 0.
    torch.manual_seed(0)
    conv, fc = nn.Conv2d(3, 4, 1), nn.Linear(4, 2)
    with torch.no_grad():
        conv.weight.abs_()
        fc.weight.copy_(torch.tensor([[1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]]))
    model = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = guided_backprop(model, x, [0, 1])
    assert (out >= 0).all() and (out.abs().sum(dim=(1, 2, 3)) > 0).all()
    assert (guided_backprop(model, x, [0, 1], rule="gradient") < 0).any()  # the plain gradient has both signs


def test_grad_cam_equals_cam_on_a_gap_head(tiny, images) -> None:
    targets = [0, 3, 1]
    maps_cam = cam(tiny, images, targets, upsample=None)
    # weights="sum", no ReLU: alpha_k = sum_ij dy/dA = w_k exactly, so the maps are identical.
    exact = grad_cam(tiny, images, targets, layer="features.4", weights="sum", relu=False, upsample=None)
    assert torch.allclose(exact, maps_cam, atol=1e-6)
    # The paper's defaults (mean, ReLU): ReLU(CAM) / Z, Z = 6*6 positions; identical after min-max normalisation.
    default = grad_cam(tiny, images, targets, layer="features.4")
    assert torch.allclose(default, cam(tiny, images, targets, relu=True) / 36, atol=1e-7)
    assert torch.allclose(minmax(default), minmax(cam(tiny, images, targets, relu=True)), atol=1e-5)


def test_cam_with_an_explicit_layer_and_classifier(tiny, images) -> None:
    auto = cam(tiny, images, 2)
    assert torch.equal(cam(tiny, images, 2, layer="features.4", fc="fc"), auto)
    assert torch.equal(cam(tiny, images, 2, layer=tiny.features[4], fc=tiny.fc), auto)
    assert auto.shape == (3, 12, 12)
