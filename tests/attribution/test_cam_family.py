"""The CAM family (Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM, Score-CAM, Ablation-CAM).

Agreement with pytorch-grad-cam and torch-cam (max abs difference <= 1e-5 after the same
normalisation) on a tiny GAP network and a random torchvision ResNet-18 at low resolution, the
known answers of hand-built models, and every place where a peer differs from the paper, with the
difference asserted and reproduced.

Normalisations: pytorch-grad-cam applies ReLU, ``(m - min) / (1e-7 + max)`` at layer resolution,
an OpenCV bilinear resize and the same scaling again; torch-cam applies ReLU and
``(m - min) / (max + 1e-8)`` at layer resolution. We reproduce each from ``upsample=None`` maps.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import xaisurvey.attribution as xa
from xaisurvey.attribution import AblationCAMWarning
from xaisurvey.attribution.grad_cam_plusplus import grad_cam_plusplus_weights
from xaisurvey.attribution.score_cam import score_cam_masks

from conftest import TinyGapNet

pgc_lib = pytest.importorskip("pytorch_grad_cam")
tcm = pytest.importorskip("torchcam.methods")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

TOL = 1e-5


# --- models and the peers' pipelines -------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny() -> TinyGapNet:
    torch.manual_seed(0)
    return TinyGapNet().eval()


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


def images(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def pgc_scale(m: torch.Tensor) -> torch.Tensor:
    m = m - m.amin(dim=(1, 2), keepdim=True)
    return m / (1e-7 + m.amax(dim=(1, 2), keepdim=True))


def tc_scale(m: torch.Tensor) -> torch.Tensor:
    m = m - m.amin(dim=(1, 2), keepdim=True)
    return m / (1e-8 + m.amax(dim=(1, 2), keepdim=True))


def as_pgc(layer_maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """pytorch-grad-cam's pipeline applied to our (ReLU-ed) layer-resolution maps."""
    up = F.interpolate(pgc_scale(layer_maps)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return pgc_scale(up)


def run_pgc(cls, model, layer, x, targets, **kwargs) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with cls(model=model, target_layers=[layer], **kwargs) as explainer:
            out = torch.from_numpy(explainer(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets]))
    model.zero_grad(set_to_none=True)
    return out


def run_tc(cls, model, layer_name, x, targets, **kwargs) -> torch.Tensor:
    extractor = cls(model, target_layer=layer_name, **kwargs)
    try:
        with torch.enable_grad():
            scores = model(x)
        return extractor(targets, scores)[0]
    finally:
        extractor.remove_hooks()
        model.zero_grad(set_to_none=True)


def activation_and_gradient(model, layer, x, targets):
    """A and dS/dA by hand: a forward hook and ``torch.autograd.grad``."""
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.update(a=o))
    try:
        scores = model(x).gather(1, torch.tensor(targets).view(-1, 1)).sum()
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(scores, store["a"])
    return store["a"].detach(), grad


def networks(tiny, resnet):
    return {
        "tiny": (tiny, tiny.features[4], "features.4", images(2, 12), [1, 2]),
        "resnet-layer3": (resnet, resnet.layer3, "layer3", images(2, 64), [1, 7]),
        "resnet-layer4": (resnet, resnet.layer4, "layer4", images(2, 64), [1, 7]),
    }


# --- gradient variants: agreement ---------------------------------------------------------------

GRADIENT_PEERS = {  # ours -> (pytorch-grad-cam class name, torch-cam class name or None)
    "xgrad_cam": ("XGradCAM", "XGradCAM"),
    "layer_cam": ("LayerCAM", "LayerCAM"),
    "hires_cam": ("HiResCAM", None),
}


@pytest.mark.parametrize("net", ["tiny", "resnet-layer3", "resnet-layer4"])
@pytest.mark.parametrize("name", list(GRADIENT_PEERS))
def test_gradient_variants_agree_with_both_peers(tiny, resnet, net, name) -> None:
    model, layer, layer_name, x, targets = networks(tiny, resnet)[net]
    ours = getattr(xa, name)(model, x, targets, layer=layer, upsample=None)
    pgc_name, tc_name = GRADIENT_PEERS[name]
    theirs = run_pgc(getattr(pgc_lib, pgc_name), model, layer, x, targets)
    assert float(ours.abs().max()) > 0
    assert (as_pgc(ours, tuple(x.shape[-2:])) - theirs).abs().max() <= TOL
    if tc_name is not None:
        assert (tc_scale(ours) - run_tc(getattr(tcm, tc_name), model, layer_name, x, targets)).abs().max() <= TOL


def test_grad_cam_plusplus_and_pytorch_grad_cam(tiny, resnet) -> None:
    """pytorch-grad-cam adds eps = 1e-6 to alpha's denominator ``2 g^2 + sum(A) g^3``.

    The paper's closed form has no eps. Where gradients are small (a random ResNet-18: g^2 is of
    the order of 1e-6 and below) the eps changes alpha by a large factor and the maps differ;
    the same formula with their eps agrees within 1e-5, and on a network with large gradients,
    where the eps is negligible, the paper's form agrees with the peer directly.
    """
    model, layer, _, x, targets = networks(tiny, resnet)["resnet-layer4"]
    ours = as_pgc(xa.grad_cam_plusplus(model, x, targets, layer=layer, upsample=None), (64, 64))
    theirs = run_pgc(pgc_lib.GradCAMPlusPlus, model, layer, x, targets)
    assert (ours - theirs).abs().max() > 1e-3
    a, g = activation_and_gradient(model, layer, x, targets)
    g2 = g * g
    alpha = torch.where(g != 0, g2 / (2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g2 * g + 1e-6), torch.zeros_like(g))
    with_eps = torch.einsum("nk,nkhw->nhw", (alpha * g.clamp(min=0)).sum(dim=(2, 3)), a).clamp(min=0)
    assert (as_pgc(with_eps, (64, 64)) - theirs).abs().max() <= TOL

    big = TinyGapNet()
    big.load_state_dict(tiny.state_dict())
    with torch.no_grad():
        big.fc.weight.mul_(1000.0)  # g = fc weight / 36 of order 10: eps / g^2 ~ 1e-8
    big.eval()
    x = images(2, 12)
    ours = as_pgc(xa.grad_cam_plusplus(big, x, [1, 2], layer="features.4", upsample=None), (12, 12))
    theirs = run_pgc(pgc_lib.GradCAMPlusPlus, big, big.features[4], x, [1, 2])
    assert float(ours.max()) > 0 and (ours - theirs).abs().max() <= TOL


def test_grad_cam_plusplus_and_torchcam(tiny, resnet) -> None:
    """torch-cam's GradCAMpp never divides by alpha's denominator.

    It computes ``alpha[idx][mask].div_(denominator[mask] + eps)``: indexing with a boolean mask
    returns a copy, so the in-place division is lost and its weights are ``sum_ij g^2 ReLU(g)``
    instead of the paper's ``sum_ij alpha ReLU(g)``. We assert the difference and reproduce the
    peer's map exactly from that formula.
    """
    for net in ("tiny", "resnet-layer4"):
        model, layer, layer_name, x, targets = networks(tiny, resnet)[net]
        theirs = run_tc(tcm.GradCAMpp, model, layer_name, x, targets)
        ours = tc_scale(xa.grad_cam_plusplus(model, x, targets, layer=layer, upsample=None))
        assert (ours - theirs).abs().max() > 1e-2, net
        a, g = activation_and_gradient(model, layer, x, targets)
        undivided = torch.einsum("nk,nkhw->nhw", (g * g * g.clamp(min=0)).sum(dim=(2, 3)), a).clamp(min=0)
        assert (tc_scale(undivided) - theirs).abs().max() <= TOL, net


# --- gradient variants: known answers -----------------------------------------------------------

class FlattenHead(nn.Module):
    """conv -> ReLU -> flatten -> linear: the head HiResCAM's argument is about (no pooling)."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(5 * 6 * 6, 3, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).flatten(1))


class CornerHead(nn.Module):
    """The score reads the feature maps at one position only: (0, 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x))[:, :, 0, 0])


def test_hires_cam_is_the_gradient_times_activation_sum_and_sums_to_the_score() -> None:
    torch.manual_seed(3)
    model = FlattenHead().eval()
    x = images(3, 6)
    maps = xa.hires_cam(model, x, [0, 1, 2], layer="relu", relu=False, upsample=None)
    a, g = activation_and_gradient(model, model.relu, x, [0, 1, 2])
    assert torch.equal(maps, (g * a).sum(dim=1))
    # Flatten + linear: the map sums to the score minus the bias (the paper's guarantee).
    scores = model(x).gather(1, torch.tensor([[0], [1], [2]]))[:, 0] - model.fc.bias[[0, 1, 2]]
    assert torch.allclose(maps.sum(dim=(1, 2)), scores.detach(), atol=1e-5)


def test_hires_cam_shows_only_what_the_score_used_and_grad_cam_does_not() -> None:
    torch.manual_seed(0)
    model = CornerHead().eval()
    x = images(2, 8)
    hires = xa.hires_cam(model, x, [0, 1], layer="relu", relu=False, upsample=None)
    grad = xa.grad_cam(model, x, [0, 1], layer="relu", relu=False, upsample=None)
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[0, 0] = False
    assert float(hires[:, outside].abs().max()) == 0.0 and float(hires[:, 0, 0].abs().min()) > 0
    assert float(grad[:, outside].abs().sum(dim=1).min()) > 0  # mass where the score reads nothing


def test_gap_head_relations(tiny) -> None:
    """On GAP + linear, dS/dA^k = v_k / Z everywhere: HiResCAM = Grad-CAM (signed), XGrad-CAM's weights
    equal Grad-CAM's, LayerCAM = ReLU(v_k)/Z weighting, and Grad-CAM++'s weights are
    ``ReLU(v_k) / (2 + v_k mean(A^k))`` (alpha = 1 / (2 + sum(A) g))."""
    x, targets = images(3, 12), [0, 1, 3]
    kwargs = dict(layer="features.4", upsample=None)
    grad = xa.grad_cam(tiny, x, targets, relu=False, **kwargs)
    assert torch.allclose(xa.hires_cam(tiny, x, targets, relu=False, **kwargs), grad, atol=1e-6)
    a, _ = activation_and_gradient(tiny, tiny.features[4], x, targets)
    v = tiny.fc.weight.detach()[targets]  # (N, K)
    alive = a.sum(dim=(2, 3)) > 0
    xgrad_expected = torch.einsum("nk,nkhw->nhw", torch.where(alive, v / 36, torch.zeros_like(v)), a)
    assert torch.allclose(xa.xgrad_cam(tiny, x, targets, relu=False, **kwargs), xgrad_expected, atol=1e-6)
    layer_expected = torch.einsum("nk,nkhw->nhw", v.clamp(min=0) / 36, a).clamp(min=0)
    assert torch.allclose(xa.layer_cam(tiny, x, targets, **kwargs), layer_expected, atol=1e-6)
    plusplus = v.clamp(min=0) / (2 + v * a.mean(dim=(2, 3)))
    expected = torch.einsum("nk,nkhw->nhw", plusplus, a).clamp(min=0)
    ours = xa.grad_cam_plusplus(tiny, x, targets, **kwargs)
    assert float(expected.max()) > 0 and torch.allclose(ours, expected, rtol=1e-5, atol=1e-7)


def test_xgrad_cam_conservation_on_a_homogeneous_head() -> None:
    """Fu et al.'s conservation axiom: a bias-free linear head gives sum_ij (sum_k w_k A^k) = S."""
    torch.manual_seed(4)
    model = FlattenHead(bias=False).eval()
    x = images(2, 6)
    maps = xa.xgrad_cam(model, x, [0, 2], layer="relu", relu=False, upsample=None)
    scores = model(x).gather(1, torch.tensor([[0], [2]]))[:, 0].detach()
    assert torch.allclose(maps.sum(dim=(1, 2)), scores, atol=1e-5)


# --- Score-CAM ----------------------------------------------------------------------------------

def masked_scores(model, x, targets, masks, *, softmax: bool) -> torch.Tensor:
    """f(X o H^k) for masks (N, K, H, W), by hand, one image and channel at a time."""
    out = torch.empty(masks.shape[:2])
    with torch.no_grad():
        for n in range(masks.shape[0]):
            logits = model(x[n:n + 1] * masks[n][:, None])
            out[n] = (logits.softmax(dim=1) if softmax else logits)[:, targets[n]]
    return out


def test_score_cam_agrees_with_both_peers_at_full_resolution(tiny) -> None:
    """At a layer of the input's resolution no upsampling happens and the masks coincide; with the
    peers' conventions (logit scores, softmax over channels) the maps agree."""
    x, targets = images(2, 12), [1, 2]
    ours = xa.score_cam(tiny, x, targets, layer="features.2", upsample=None, score="logit", channel_softmax=True)
    assert float(ours.max()) > 0
    theirs = run_pgc(pgc_lib.ScoreCAM, tiny, tiny.features[2], x, targets)
    assert (as_pgc(ours, (12, 12)) - theirs).abs().max() <= TOL
    with torch.no_grad():
        tiny(x)  # torch-cam's ScoreCAM reads the input from its hook
    extractor = tcm.ScoreCAM(tiny, target_layer="features.2")
    try:
        with torch.no_grad():
            tiny(x)
        tc = extractor(targets)[0]
    finally:
        extractor.remove_hooks()
    assert (tc_scale(ours) - tc).abs().max() <= TOL


def test_score_cam_peers_build_other_masks_when_upsampling(resnet) -> None:
    """The paper upsamples A^k, then min-max scales it (H^k = s(Up(A^k))). pytorch-grad-cam
    upsamples with ``UpsamplingBilinear2d`` (``align_corners=True``); torch-cam min-max scales at
    layer resolution and then upsamples. Bilinear upsampling moves the extremes, so the masks and
    the maps differ; each peer's map is reproduced from its own masks."""
    x, targets = images(1, 32), [7]
    layer = resnet.layer2  # 4 x 4 for 32 x 32 inputs, 128 channels
    a, _ = activation_and_gradient(resnet, layer, x, targets)
    ours = xa.score_cam(resnet, x, targets, layer=layer, upsample=None, score="logit", channel_softmax=True)

    def from_masks(masks: torch.Tensor) -> torch.Tensor:
        weights = masked_scores(resnet, x, targets, masks, softmax=False).softmax(dim=1)
        return torch.einsum("nk,nkhw->nhw", weights, a).clamp(min=0)

    up = F.interpolate(a, size=(32, 32), mode="bilinear", align_corners=True)
    low, high = up.amin(dim=(2, 3), keepdim=True), up.amax(dim=(2, 3), keepdim=True)
    pgc_masks = (up - low) / (high - low + 1e-8)
    theirs = run_pgc(pgc_lib.ScoreCAM, resnet, layer, x, targets)
    assert (as_pgc(ours, (32, 32)) - theirs).abs().max() > 1e-4
    assert (as_pgc(from_masks(pgc_masks), (32, 32)) - theirs).abs().max() <= TOL

    low, high = a.amin(dim=(2, 3), keepdim=True), a.amax(dim=(2, 3), keepdim=True)
    tc_masks = F.interpolate((a - low) / (high + 1e-8 - low), size=(32, 32), mode="bilinear", align_corners=False)
    extractor = tcm.ScoreCAM(resnet, target_layer="layer2")
    try:
        with torch.no_grad():
            resnet(x)
        tc = extractor(targets)[0]
    finally:
        extractor.remove_hooks()
    assert (tc_scale(ours) - tc).abs().max() > 1e-4
    assert (tc_scale(from_masks(tc_masks)) - tc).abs().max() <= TOL


def test_score_cam_default_is_the_papers_increase_of_confidence(resnet) -> None:
    """The paper (Definition 2, Sec. 4.2): C_k = p_c(X o H^k) - p_c(X_b), p the softmax
    probability, X_b black, weights C_k. The peers instead take the softmax over channels of
    logits, which is a different map; the channel softmax makes the baseline irrelevant."""
    x, targets = images(2, 32), [7, 3]
    layer = resnet.layer2
    a, _ = activation_and_gradient(resnet, layer, x, targets)
    masks = score_cam_masks(a.flatten(0, 1), (32, 32)).view(*a.shape[:2], 32, 32)
    with torch.no_grad():
        base = resnet(torch.zeros_like(x)).softmax(dim=1)[[0, 1], targets]
    increase = masked_scores(resnet, x, targets, masks, softmax=True) - base[:, None]
    expected = torch.einsum("nk,nkhw->nhw", increase, a).clamp(min=0)
    ours = xa.score_cam(resnet, x, targets, layer=layer, upsample=None)
    assert float(expected.max()) > 0
    assert torch.allclose(ours, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))
    peers = xa.score_cam(resnet, x, targets, layer=layer, upsample=None, score="logit", channel_softmax=True)
    assert (tc_scale(ours) - tc_scale(peers)).abs().max() > 1e-2
    shifted = xa.score_cam(resnet, x, targets, layer=layer, upsample=None, score="logit", channel_softmax=True, baseline=0.3)
    assert torch.allclose(shifted, peers, rtol=1e-5, atol=1e-7)


def test_score_cam_batch_size_does_not_change_the_map(tiny) -> None:
    x = images(3, 12)
    maps = [xa.score_cam(tiny, x, [0, 1, 2], layer="features.4", batch_size=b) for b in (1, 5, 64)]
    assert torch.allclose(maps[0], maps[1], atol=1e-7) and torch.allclose(maps[0], maps[2], atol=1e-7)


def test_score_cam_constant_channels_cost_no_pass_and_weigh_zero(tiny) -> None:
    """A constant map's mask is zero, so its masked image is black: with the black baseline its
    increase is exactly 0; with another baseline it is f(black) - f(X_b), computed once per image."""
    calls = []
    handle = tiny.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        x = torch.full((1, 3, 12, 12), 0.5)  # a flat image: many channels are constant
        xa.score_cam(tiny, x, 0, layer="features.4", batch_size=1000)
    finally:
        handle.remove()
    a, _ = activation_and_gradient(tiny, tiny.features[4], x, [0])
    live = int((a.flatten(2).amax(2) > a.flatten(2).amin(2)).sum())
    assert calls == [1, 1] + ([live] if live else [])  # activations, the baseline, the live channels


# --- Ablation-CAM -------------------------------------------------------------------------------

def test_ablation_cam_agrees_with_pytorch_grad_cam(tiny, resnet) -> None:
    cases = [(tiny, tiny.features[4], images(2, 12), [1, 2]), (resnet, resnet.layer2, images(2, 32), None)]
    for model, layer, x, targets in cases:
        if targets is None:
            targets = model(x).argmax(dim=1).tolist()  # positive scores: see the next test
        ours = xa.ablation_cam(model, x, targets, layer=layer, upsample=None)
        theirs = run_pgc(pgc_lib.AblationCAM, model, layer, x, targets)
        assert float(ours.max()) > 0
        assert (as_pgc(ours, tuple(x.shape[-2:])) - theirs).abs().max() <= TOL


def test_ablation_cam_on_a_linear_head_and_non_positive_scores(tiny) -> None:
    """GAP + linear: ablating channel k lowers the score by v_k mean(A^k), so w_k = v_k mean(A^k) / y.
    For y <= 0 the paper's division would flip the map: we use the plain drops and warn;
    pytorch-grad-cam divides anyway, and its map differs."""
    x = images(2, 12)
    targets = [1, 2]
    y = tiny(x).gather(1, torch.tensor([[1], [2]]))[:, 0].detach()
    assert bool((y > 0).all())
    a, _ = activation_and_gradient(tiny, tiny.features[4], x, targets)
    v = tiny.fc.weight.detach()[targets]
    expected = torch.einsum("nk,nkhw->nhw", v * a.mean(dim=(2, 3)) / y[:, None], a).clamp(min=0)
    ours = xa.ablation_cam(tiny, x, targets, layer="features.4", upsample=None)
    assert float(expected.max()) > 0 and torch.allclose(ours, expected, rtol=1e-4, atol=1e-7)

    negative = [0, 0]  # class 0 has a negative score on these images
    assert bool((tiny(x)[:, 0] < 0).all())
    with pytest.warns(AblationCAMWarning, match="<= 0 for 2 image"):
        ours = xa.ablation_cam(tiny, x, negative, layer="features.4", upsample=None)
    v = tiny.fc.weight.detach()[negative]
    drops = torch.einsum("nk,nkhw->nhw", v * a.mean(dim=(2, 3)), a).clamp(min=0)
    assert torch.allclose(ours, drops, rtol=1e-4, atol=1e-7)
    theirs = run_pgc(pgc_lib.AblationCAM, tiny, tiny.features[4], x, negative)
    assert (as_pgc(ours, (12, 12)) - theirs).abs().max() > 0.1


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, options, match",
    [
        ("score_cam", {"batch_size": 0}, "score_cam: batch_size must be an int >= 1, got 0"),
        ("score_cam", {"score": "probability"}, "score_cam: score must be one of 'softmax', 'logit', got 'probability'"),
        ("score_cam", {"baseline": "black"}, "score_cam: baseline must be a finite number or a tensor, got 'black'"),
        ("score_cam", {"baseline": torch.zeros(2, 3, 5, 5)}, "score_cam: baseline must broadcast to x's shape"),
        ("score_cam", {"channel_softmax": 1}, "score_cam: channel_softmax must be True or False, got 1"),
        ("ablation_cam", {"batch_size": 2.0}, "ablation_cam: batch_size must be an int >= 1, got 2.0"),
        ("grad_cam_plusplus", {"relu": "yes"}, "grad_cam_plusplus: relu must be True or False, got 'yes'"),
        ("xgrad_cam", {"upsample": "bicubic"}, "xgrad_cam: upsample must be one of 'bilinear', 'nearest', None, got 'bicubic'"),
        ("layer_cam", {"layer": "nope"}, "layer_cam: the model has no layer named 'nope'"),
        ("hires_cam", {"layer": "fc"}, "hires_cam: layer 'fc' produces an output of shape"),
    ],
)
def test_bad_options_give_one_line_errors(tiny, name, options, match) -> None:
    options = {"layer": "features.4", **options}
    with pytest.raises(ValueError) as info:
        getattr(xa, name)(tiny, images(2, 12), 0, **options)
    message = str(info.value)
    assert message.startswith(match) and "\n" not in message


def test_score_cam_softmax_needs_class_scores() -> None:
    class TupleOut(TinyGapNet):
        def forward(self, x):
            return (super().forward(x), x.mean())

    torch.manual_seed(0)
    model = TupleOut().eval()
    with pytest.raises(ValueError, match="score_cam: score='softmax' needs an output of shape"):
        xa.score_cam(model, images(1, 12), lambda out: out[0][:, 0], layer="features.4")
    maps = xa.score_cam(model, images(1, 12), lambda out: out[0][:, 0], layer="features.4", score="logit")
    assert maps.shape == (1, 12, 12)
