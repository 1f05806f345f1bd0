"""Layer-wise relevance propagation: zennit, conservation, a hand-computed model, captum, safety, errors.

Conventions matched with zennit (``Gradient`` attributor, a composite, its canonizers):
* the output relevance is the target score: zennit is given ``output * one_hot``;
* zennit's ``MergeBatchNorm`` folds a BatchNorm into the layer before it and then makes the
  BatchNorm an identity by setting mean 0, variance 1, weight 1 and bias 0, which still divides by
  ``sqrt(1 + eps)``: its canonized network computes ``1 / sqrt(1 + eps)`` times each folded
  BatchNorm's output (relative 5e-6 per layer for eps = 1e-5). We fold exactly, so the maps agree
  to rounding with ``eps = 0`` and differ by that factor's effect otherwise (shown below);
* a model that normalises its [0, 1] input inside: our relevance passes through the
  normalisation unchanged and the z^B bounds are carried through it; zennit's is the gradient
  there (it divides by the std) and its bounds are given in normalised units.
Comparisons run in float64 so that rounding does not hide a difference in the rules.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from xaisurvey.attribution import lrp, registry, relevance_by_layer
from xaisurvey.attribution.lrp import COMPOSITES
from xaisurvey.models.mobilenet import IMAGENET_MEAN, IMAGENET_STD, MobileNetV1

zennit = pytest.importorskip("zennit")
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat, LayerMapComposite  # noqa: E402
from zennit.layer import Sum  # noqa: E402
from zennit.rules import AlphaBeta, Epsilon, Gamma, Norm, Pass, ZPlus  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402
from zennit.types import Activation, AvgPool, BatchNorm, Convolution  # noqa: E402

D = torch.float64
TOL = 1e-5


def _bn_stats(model: nn.Module, seed: int = 1, eps: float | None = None) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters (negative scales included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.num_features, generator=g))
                if eps is not None:
                    m.eps = eps
    return model.eval()


def vgg_style(bias: bool = True, bn: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    norm = (lambda c: [nn.BatchNorm2d(c)]) if bn else (lambda c: [])
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=bias), *norm(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1, bias=bias), *norm(12), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(12, 12, 3, padding=1, bias=bias), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(48, 16, bias=bias), nn.ReLU(), nn.Dropout(), nn.Linear(16, 5, bias=bias),
    )


def resnet_style(block: str) -> nn.Module:
    torch.manual_seed(0)
    resnet = torchvision.models.resnet
    if block == "basic":
        return resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1], num_classes=5)
    return resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], num_classes=5, width_per_group=16)


MODELS = {"vgg": lambda: vgg_style(), "resnet_basic": lambda: resnet_style("basic"),
          "resnet_bottleneck": lambda: resnet_style("bottleneck")}


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=D)


def _zennit(model: nn.Module, x: torch.Tensor, targets: list[int], composite: object) -> torch.Tensor:
    with Gradient(model, composite) as attributor:
        _, relevance = attributor(x.clone(), lambda out: out * torch.eye(out.shape[1], dtype=out.dtype)[targets])
    return relevance


def _zennit_composite(name: str, canonizers: list) -> object:
    if name == "epsilon_gamma_box":
        return EpsilonGammaBox(low=0.0, high=1.0, canonizers=canonizers)
    return EpsilonPlusFlat(canonizers=canonizers)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "epsilon_plus_flat"])
def test_agrees_with_zennit(model_name: str, composite: str, images: torch.Tensor) -> None:
    model = _bn_stats(MODELS[model_name](), eps=0.0).double()
    canonizers = [SequentialMergeBatchNorm()] if model_name == "vgg" else [ResNetCanonizer()]
    ours = lrp(model, images, [1, 3], composite=composite)
    theirs = _zennit(model, images, [1, 3], _zennit_composite(composite, canonizers))
    assert _rel_err(ours, theirs) < TOL
    assert float(theirs.abs().max()) > 0


def test_zennit_identity_batchnorm_is_not_exact(images: torch.Tensor) -> None:
    """With eps > 0 zennit's canonized network scales each folded BatchNorm by 1 / sqrt(1 + eps)."""
    model = _bn_stats(vgg_style()).double()  # eps = 1e-5
    x = images
    with Gradient(model, EpsilonGammaBox(low=0.0, high=1.0, canonizers=[SequentialMergeBatchNorm()])) as attributor:
        canon_out, theirs = attributor(x.clone(), lambda out: out * torch.eye(5, dtype=D)[[1, 3]])
    true_out = model(x)
    # The canonized output is not the model's; ours is computed on the model as it is.
    assert float((canon_out - true_out).abs().max()) > 1e-9
    ours = lrp(model, x, [1, 3])
    assert 1e-8 < _rel_err(ours, theirs) < 1e-3
    # One folded BatchNorm directly before the linear output: zennit's output is scaled exactly.
    one = _bn_stats(nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.Flatten())).double()
    with Gradient(one, EpsilonGammaBox(low=0.0, high=1.0, canonizers=[SequentialMergeBatchNorm()])) as attributor:
        canon_one, _ = attributor(x.clone(), lambda out: out)
    assert torch.allclose(canon_one, one(x) / (1 + one[1].eps) ** 0.5, rtol=1e-12, atol=0)


def _rule_composite(rule: str) -> object:
    make = {"epsilon": lambda: Epsilon(epsilon=1e-6), "gamma": lambda: Gamma(gamma=0.25),
            "alpha1_beta0": lambda: ZPlus(), "alpha2_beta1": lambda: AlphaBeta(alpha=2.0, beta=1.0)}[rule]
    layer_map = [(Activation, Pass()), (Sum, Norm()), (AvgPool, Norm()), (BatchNorm, Pass()),
                 (Convolution, make()), (nn.Linear, make())]
    return LayerMapComposite(layer_map=layer_map, canonizers=[SequentialMergeBatchNorm()])


@pytest.mark.parametrize("rule", ["epsilon", "gamma", "alpha1_beta0", "alpha2_beta1"])
def test_single_rules_agree_with_zennit_on_signed_inputs(rule: str) -> None:
    """Every layer under one rule; inputs in [-1, 1] reach the first layer's negative-input branch."""
    model = _bn_stats(vgg_style(), eps=0.0).double()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5), dtype=D) * 2 - 1
    ours = lrp(model, x, [0, 4], rule=rule, low=-1.0, high=1.0)
    theirs = _zennit(model, x, [0, 4], _rule_composite(rule))
    assert _rel_err(ours, theirs) < TOL


def test_normalisation_inside_the_model_and_depthwise_convolutions() -> None:
    """MobileNetV1 (depthwise separable convolutions, its own normalisation), random weights.

    Ours on [0, 1] images equals zennit on the normalised images with the network after its
    normalisation and the bounds (0 - mean) / std, (1 - mean) / std: the relevance passes through
    the normalisation unchanged and the z^B bounds are carried through it.
    """
    torch.manual_seed(0)
    net = _bn_stats(MobileNetV1(num_classes=7), eps=0.0).double()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=D)
    mean, std = torch.tensor(IMAGENET_MEAN, dtype=D).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD, dtype=D).view(1, 3, 1, 1)
    headless = copy.deepcopy(net)
    headless.normalize = nn.Identity()
    ours = lrp(net, x, 2)
    theirs = _zennit(headless, (x - mean) / std, [2], EpsilonGammaBox(
        low=(0 - mean) / std, high=(1 - mean) / std, canonizers=[SequentialMergeBatchNorm()]))
    assert _rel_err(ours, theirs) < TOL
    # zennit run on the whole model (its normalisation included) returns the gradient there: / std.
    through = _zennit(net, x, [2], EpsilonGammaBox(
        low=(0 - mean) / std, high=(1 - mean) / std, canonizers=[SequentialMergeBatchNorm()]))
    assert _rel_err(ours / std, through) < TOL


# --- conservation -------------------------------------------------------------------------------

CONSERVING = [
    {"rule": "epsilon", "epsilon": 0.0}, {"rule": "alpha1_beta0"}, {"rule": "alpha2_beta1"}, {"rule": "gamma"},
    {"composite": "epsilon_gamma_box", "epsilon": 0.0}, {"composite": "epsilon_plus_flat", "epsilon": 0.0},
]


@pytest.mark.parametrize("options", CONSERVING, ids=lambda o: "-".join(str(v) for v in o.values()))
@pytest.mark.parametrize("model_name", ["vgg", "resnet_basic"])
def test_conservation_layer_by_layer_without_biases(model_name: str, options: dict) -> None:
    if model_name == "vgg":
        model = vgg_style(bias=False, bn=False).double().eval()
    else:
        model = resnet_style("basic").double().eval()
        for m in model.modules():  # BatchNorm folded without a shift: a bias-free network
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.zero_()
                    m.bias.zero_()
                    m.weight.uniform_(0.5, 1.5)
        model.fc.bias = None
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4), dtype=D)
    relevance, steps = relevance_by_layer(model, x, [0, 2], stabilizer=1e-12, **options)
    score = model(x)[[0, 1], [0, 2]]
    layers = [s for s in steps if s.op in ("conv", "linear")]
    assert len(layers) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    for step in steps:
        assert torch.allclose(step.relevance_in, step.relevance_out, rtol=1e-6, atol=1e-12), step
    assert torch.allclose(relevance.sum((1, 2, 3)), score, rtol=1e-6)


def test_biases_absorb_relevance_as_the_epsilon_rule_says() -> None:
    """With biases, a layer under epsilon (eps=0) passes sum_k R_k (z_k - b_k) / z_k."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = torch.rand(1, 1, 2, 3, generator=torch.Generator().manual_seed(0), dtype=D)
    _, steps = relevance_by_layer(model, x, 1, rule="epsilon", epsilon=0.0)
    top = steps[0]
    z = model(x)[0, 1]
    assert torch.allclose(top.relevance_out, z.view(1))
    assert torch.allclose(top.relevance_in, (z - model[3].bias[1]).view(1))


# --- a hand-computed micro-model ----------------------------------------------------------------

def _micro() -> nn.Sequential:
    """x (1, 2) -> Linear(W1 = [[1, -1], [2, 1]], b1 = [0, -1]) -> ReLU -> Linear(W2 = [[2, 1]], b2 = [1])."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 1.0]]))
        net[1].bias.copy_(torch.tensor([0.0, -1.0]))
        net[3].weight.copy_(torch.tensor([[2.0, 1.0]]))
        net[3].bias.copy_(torch.tensor([1.0]))
    return net.double().eval()


MICRO_X = torch.tensor([[[[1.0, 2.0]]]], dtype=D)
# Forward by hand: h = W1 x + b1 = (1 - 2 + 0, 2 + 2 - 1) = (-1, 3); a = ReLU(h) = (0, 3);
# y = 2 * 0 + 1 * 3 + 1 = 4, the output relevance.


@pytest.mark.parametrize("options, expected", [
    # epsilon (eps = 0): R_a2 = 3 * 1 / 4 * 4 = 3 (the bias keeps 1); R_x = x_i w_2i / 3 * 3 = (2, 2).
    ({"rule": "epsilon", "epsilon": 0.0}, [2.0, 2.0]),
    # gamma 0.25: top z+ = 1.25 * 3 + 1.25 = 5, R_a2 = 3.75 / 5 * 4 = 3; first layer row 2:
    # rho = (2.5, 1.25), z+ = 2.5 + 2.5 - 1 = 4, R_x = (2.5 / 4 * 3, 2.5 / 4 * 3) = (1.875, 1.875).
    ({"rule": "gamma", "gamma": 0.25}, [1.875, 1.875]),
    # alpha2-beta1: top positive 3 + b+ 1 = 4, no negative part: R_a2 = 2 * 3 / 4 * 4 = 6;
    # first layer positive 2 + 2 = 4 (b- = -1 only in the negative part, which has no inputs):
    # R_x = 2 * (2 / 4) * 6 = (6, 6).
    ({"rule": "alpha2_beta1"}, [6.0, 6.0]),
    # z^B on [-1, 2] for the first layer (epsilon 0 above: R_a2 = 3): row 2 has w = (2, 1) > 0,
    # z = x.w - l.w+ = 4 + 3 = 7 (biases cancel); R_x = ((2 + 2) / 7 * 3, (2 + 1) / 7 * 3).
    ({"rule": "epsilon", "epsilon": 0.0, "first_rule": "zb", "low": -1.0, "high": 2.0}, [12 / 7, 9 / 7]),
    # flat: each input gets half of R_h2 = 3.
    ({"rule": "epsilon", "epsilon": 0.0, "first_rule": "flat"}, [1.5, 1.5]),
])
def test_hand_computed_micro_model(options: dict, expected: list[float]) -> None:
    net = _micro()
    assert float(net(MICRO_X)) == 4.0
    got = lrp(net, MICRO_X, 0, stabilizer=0.0, **options).flatten()
    assert torch.allclose(got, torch.tensor(expected, dtype=D), atol=1e-9), got


# --- captum -------------------------------------------------------------------------------------

class _Residual(nn.Module):
    """conv -> ReLU -> (conv(x) + x) -> ReLU -> GAP -> linear, without biases: LRP conserves."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu1(self.conv1(x))
        return self.fc(self.pool(self.relu2(self.conv2(y) + y)).flatten(1))


class _CaptumNet(nn.Module):
    """``vgg_style`` with the flattening in ``forward`` (captum's LRP has no rule for ``nn.Flatten``)."""

    def __init__(self, bn: bool) -> None:
        super().__init__()
        layers = list(vgg_style(bn=bn))
        cut = next(i for i, m in enumerate(layers) if isinstance(m, nn.Flatten))
        self.features, self.head = nn.Sequential(*layers[:cut]), nn.Sequential(*layers[cut + 1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def test_captum_lrp_agrees_on_plain_networks_and_differs_at_skip_connections() -> None:
    captum_attr = pytest.importorskip("captum.attr")
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=D)
    # Sequential, no BatchNorm: captum's LRP (epsilon 1e-9 everywhere) is ours with rule="epsilon".
    plain = _CaptumNet(bn=False).double().eval()
    theirs = captum_attr.LRP(copy.deepcopy(plain)).attribute(x, target=1)
    assert _rel_err(lrp(plain, x, 1, rule="epsilon", epsilon=1e-9, stabilizer=1e-9), theirs) < TOL
    # A skip connection written as `+`: captum passes the whole relevance into both branches.
    res = _Residual().double().eval()
    score = res(x)[:, 1]
    ours = lrp(res, x, 1, rule="epsilon", epsilon=0.0, stabilizer=0.0)
    theirs = captum_attr.LRP(copy.deepcopy(res)).attribute(x, target=1)
    assert torch.allclose(ours.sum((1, 2, 3)), score, rtol=1e-6)  # conserved
    assert float((theirs.sum((1, 2, 3)) - score).abs().min()) > 1e-3 * float(score.abs().max())
    # BatchNorm: captum gives it an epsilon rule of its own; we fold it (as zennit does). A
    # BatchNorm is an elementwise affine map, so epsilon through the layer and then the BatchNorm
    # equals epsilon through the folded layer, up to where the stabiliser enters.
    bn = _bn_stats(_CaptumNet(bn=True), eps=0.0).double()
    theirs = captum_attr.LRP(copy.deepcopy(bn)).attribute(x, target=1)
    ours = lrp(bn, x, 1, rule="epsilon", epsilon=1e-9)
    zen = _zennit(bn, x, [1], LayerMapComposite(
        [(Activation, Pass()), (AvgPool, Norm()), (BatchNorm, Pass()), (Convolution, Epsilon(1e-9)),
         (nn.Linear, Epsilon(1e-9))], canonizers=[SequentialMergeBatchNorm()]))
    assert _rel_err(ours, zen) < TOL
    assert _rel_err(theirs, zen) < 1e-3


# --- the user's model, the registry, errors -----------------------------------------------------

def _state(model: nn.Module) -> dict:
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "buffers": {n: b.detach().clone() for n, b in model.named_buffers()},
        "flags": [(n, m.training) for n, m in model.named_modules()],
        "grad": [(n, p.requires_grad, p.grad) for n, p in model.named_parameters()],
        "hooks": [(n, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for n, m in model.named_modules()],
        "attrs": [(n, sorted(vars(m))) for n, m in model.named_modules()],
    }


def _same(a: dict, b: dict) -> bool:
    return (a["flags"] == b["flags"] and a["grad"] == b["grad"] and a["hooks"] == b["hooks"]
            and a["attrs"] == b["attrs"]
            and all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])
            and all(torch.equal(a["buffers"][k], b["buffers"][k]) for k in a["buffers"]))


class _SoftmaxHead(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.body(x), dim=1)


def test_model_left_unchanged_also_after_an_error() -> None:
    model = _bn_stats(resnet_style("basic")).train()  # training mode: the guard must restore it
    model.layer1[0].bn1.eval()  # a frozen BatchNorm inside
    hook = model.fc.register_forward_hook(lambda *a: None)
    before = _state(model)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    lrp(model, x, 1)
    assert _same(before, _state(model))
    wrapped = _SoftmaxHead(model)
    with pytest.raises(ValueError, match="softmax"):
        lrp(wrapped, x, 1)
    assert _same(before, _state(model))
    hook.remove()


def test_registered() -> None:
    spec = registry.get("lrp")
    assert (spec.family, spec.floor, spec.output, spec.to_map) == ("relevance", "backward_to_input", "input", "sum")
    model = _bn_stats(vgg_style())
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = registry.explain("lrp", model, x, 1)
    assert torch.allclose(maps, lrp(model, x, 1).sum(1))
    assert set(COMPOSITES) >= {"epsilon_gamma_box", "epsilon_plus_flat"}


class _Product(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.gate = nn.Sigmoid()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc((y * self.gate(y)).mean((2, 3)))


class _LoneBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x).mean((2, 3)))


class _InPlaceStatement(nn.Module):
    """``y.add_(z)`` as a statement: its result is not used, the old tensor is."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, z = self.conv(x), self.conv(x)
        y.add_(z)
        return self.fc(y.mean((2, 3)))


@pytest.mark.parametrize("model_fn, options, message", [
    (_InPlaceStatement, {}, "changed by an in-place operation is used again"),
    (vgg_style, {"composite": "box"}, "composite must be one of"),
    (vgg_style, {"rule": "z_plus"}, "rule must be one of"),
    (vgg_style, {"rule": "epsilon", "composite": "epsilon_plus_flat"}, "either rule= or composite="),
    (vgg_style, {"first_rule": "alpha"}, "first_rule must be one of"),
    (vgg_style, {"epsilon": -1.0}, "epsilon must be"),
    (vgg_style, {"gamma": "big"}, "gamma must be"),
    (vgg_style, {"stabilizer": float("nan")}, "stabilizer must be"),
    (vgg_style, {"low": 1.0, "high": 0.0}, "low must be <= high"),
    (vgg_style, {"low": torch.zeros(5)}, "low of shape"),
    (vgg_style, {"high": "one"}, "high must be a number"),
    (vgg_style, {"rule": "zb"}, "zb rule needs the input bounds"),
    (_Product, {}, "product or quotient of two tensors"),
    (_LoneBatchNorm, {}, "BatchNorm in module 'bn' does not directly follow"),
    (lambda: _SoftmaxHead(vgg_style()), {}, "no relevance rule for softmax"),
])
def test_errors_are_one_line(model_fn, options: dict, message: str) -> None:  # noqa: ANN001
    model = model_fn().eval()
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=message) as info:
        lrp(model, x, 0, **options)
    assert "\n" not in str(info.value)


def test_flat_input_gives_zeros_not_nan() -> None:
    model = _bn_stats(resnet_style("basic"))
    for composite in ("epsilon_gamma_box", "epsilon_plus_flat"):
        out = lrp(model, torch.zeros(1, 3, 32, 32), 0, composite=composite)
        assert bool(torch.isfinite(out).all())
    dead = vgg_style()
    for p in dead.parameters():
        p.data.zero_()
    assert float(lrp(dead.eval(), torch.rand(1, 3, 16, 16), 0, rule="epsilon").abs().max()) == 0.0
