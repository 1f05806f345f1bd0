"""Perturbation methods: occlusion, RISE, LIME and KernelSHAP (issue 14).

Against captum (Occlusion; Lime and KernelShap fed our samples, kernel and solver), against
known answers on hand-built models (linear models, a constant model, a one-pixel probe), and
their options, determinism and batching.
"""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from xaisurvey.attribution import kernel_shap, lime, occlusion, rise, rise_masks
from xaisurvey.attribution._perturb import segment_means
from xaisurvey.attribution.kernel_shap import kernel_shap_samples
from xaisurvey.attribution.lime import lime_kernel, lime_samples

captum_attr = pytest.importorskip("captum.attr")
pytest.importorskip("sklearn")

TOL = 1e-5


def small_cnn(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    return net.to(dtype).eval()


class Linear(nn.Module):
    """S_c(x) = sum_{k,i,j} W[c, k, i, j] x[k, i, j] + b_c: every attribution has a known answer."""

    def __init__(self, shape: tuple[int, int, int], classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn((classes, *shape), generator=g, dtype=torch.float64))
        self.bias = nn.Parameter(torch.randn(classes, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nkij,ckij->nc", x, self.weight) + self.bias


class Constant(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2), self.value, dtype=x.dtype) + 0 * self.dummy


def images(n: int = 2, size: int = 12, seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand((n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=dtype)


def grid_segments(size: int, k: int) -> torch.Tensor:
    idx = torch.arange(size) * k // size
    return idx[:, None] * k + idx[None, :]


# ------------------------------------------------------------------------------------------
# Occlusion against captum


@pytest.mark.parametrize(
    "window, stride, baseline",
    [(4, 2, 0.0), ((3, 5), (2, 3), 0.3), (12, 1, 0.5), (1, 1, "tensor")],
)
def test_occlusion_matches_captum(window, stride, baseline):
    model, x, target = small_cnn(), images(), [1, 3]
    wh, ww = (window, window) if isinstance(window, int) else window
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    if baseline == "tensor":
        baseline = torch.rand((1, 3, 12, 12), generator=torch.Generator().manual_seed(5))
    ours = occlusion(model, x, target, window=window, stride=stride, baseline=baseline, batch_size=7)
    theirs = captum_attr.Occlusion(model).attribute(
        x, sliding_window_shapes=(3, wh, ww), strides=(3, sh, sw), baselines=baseline,
        target=torch.tensor(target), perturbations_per_eval=5)
    assert torch.allclose(theirs[:, 0], theirs[:, 2])  # captum repeats the map over the channels
    assert float((ours - theirs[:, 0]).abs().max()) < TOL


def test_occlusion_is_mean_of_drops_by_hand():
    """The per-pixel mean of the score drops of the windows covering it, computed by a loop."""
    model, x = small_cnn(2), images(1, 8)
    ours = occlusion(model, x, 0, window=3, stride=2, baseline=0.2)
    with torch.no_grad():
        s0 = model(x)[0, 0]
        total, count = torch.zeros(8, 8), torch.zeros(8, 8)
        for top, left in itertools.product((0, 2, 4, 6), (0, 2, 4, 6)):  # the last windows are cut at 8
            occluded = x.clone()
            occluded[..., top:top + 3, left:left + 3] = 0.2
            total[top:top + 3, left:left + 3] += s0 - model(occluded)[0, 0]
            count[top:top + 3, left:left + 3] += 1
    assert float((ours[0] - total / count).abs().max()) < TOL


def test_occlusion_1x1_on_linear_model_is_weight_times_difference():
    model, x = Linear((3, 6, 6)), images(2, 6, dtype=torch.float64)
    baseline = 0.25
    ours = occlusion(model, x, [0, 2], window=1, stride=1, baseline=baseline)
    expected = torch.stack([(model.weight[c] * (x[i] - baseline)).sum(0) for i, c in enumerate([0, 2])])
    assert torch.allclose(ours, expected.detach(), atol=1e-10)


# ------------------------------------------------------------------------------------------
# LIME and KernelSHAP against captum, fed the same segments, samples, kernel and solver


def _feed(rows: torch.Tensor):
    def perturb(_inputs, **_kwargs):
        for row in rows:
            yield row[None].long()

    return perturb


def test_lime_matches_captum_given_samples_kernel_and_ridge():
    from captum._utils.models.linear_model import SkLearnRidge

    model, x = small_cnn(3), images(1, 12, seed=4)
    seg = grid_segments(12, 3)
    samples = 40
    ours = lime(model, x, 2, samples=samples, segments=seg, baseline="mean", seed=7, batch_size=9)
    z = lime_samples(9, samples, seed=7)
    base = segment_means(x, seg[None])
    explainer = captum_attr.Lime(
        model, interpretable_model=SkLearnRidge(alpha=1.0),
        similarity_func=lambda _x, _p, sample, **_k: lime_kernel(sample.float(), 0.25),
        perturb_func=_feed(z))
    theirs = explainer.attribute(x, target=2, baselines=base, feature_mask=seg[None, None], n_samples=samples,
                                 perturbations_per_eval=8)
    assert float((ours - theirs[:, 0]).abs().max()) < TOL


def test_lime_kernel_is_the_lime_packages():
    """lime's LimeImageExplainer: sqrt(exp(-d^2 / w^2)) with d the cosine distance to all-ones."""
    z = lime_samples(7, 30, seed=0)
    ones = torch.ones(7)
    cos = (z @ ones) / (z.norm(dim=1).clamp(min=1e-300) * ones.norm())
    d = 1 - cos  # an empty row has similarity 0, as scikit-learn's cosine_distances
    assert torch.allclose(lime_kernel(z, 0.25), torch.sqrt(torch.exp(-d**2 / 0.25**2)), atol=1e-6)


def test_kernel_shap_matches_captum_given_samples():
    model, x = small_cnn(4), images(1, 12, seed=6)
    seg = grid_segments(12, 3)
    samples = 60
    ours = kernel_shap(model, x, 1, samples=samples, segments=seg, baseline=0.0, seed=3, batch_size=16)
    z, exact = kernel_shap_samples(9, samples, seed=3)
    assert not exact
    explainer = captum_attr.KernelShap(model)
    explainer.perturb_func = _feed(z)
    theirs = explainer.attribute(x, target=1, baselines=0.0, feature_mask=seg[None, None], n_samples=samples)
    assert float((ours - theirs[:, 0]).abs().max()) < TOL


def test_kernel_shap_efficiency_is_exact_while_captums_default_is_approximate():
    """The paper's infinite weights: sum(phi) = S(x) - S(baseline). Ours imposes it exactly;
    captum's weight 10^6 leaves a small gap (the difference this test documents)."""
    model, x = small_cnn(4, torch.float64), images(1, 12, seed=6, dtype=torch.float64)
    seg = grid_segments(12, 3)
    ours = kernel_shap(model, x, 1, samples=40, segments=seg, baseline=0.0, seed=3)
    with torch.no_grad():
        delta = float(model(x)[0, 1] - model(torch.zeros_like(x))[0, 1])
    phi = torch.stack([ours[0][seg == m][0] for m in range(9)])
    assert abs(float(phi.sum()) - delta) < 1e-10
    z, _ = kernel_shap_samples(9, 40, seed=3)
    explainer = captum_attr.KernelShap(model)
    explainer.perturb_func = _feed(z)
    theirs = explainer.attribute(x, target=1, baselines=0.0, feature_mask=seg[None, None], n_samples=40)
    phi_captum = torch.stack([theirs[0, 0][seg == m][0] for m in range(9)]).double()
    assert abs(float(phi_captum.sum()) - delta) > 1e-9  # float32 data and a finite weight


def test_kernel_shap_on_linear_model_recovers_weight_times_difference():
    model, x = Linear((3, 8, 8), seed=3), images(2, 8, dtype=torch.float64)
    base = torch.rand((3, 8, 8), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    for k, samples in ((2, 16), (3, 40)):  # 2^4 = 16: exact enumeration; 9 superpixels: sampled
        seg = grid_segments(8, k)
        ours = kernel_shap(model, x, [0, 1], samples=samples, segments=seg, baseline=base)
        for i, c in enumerate([0, 1]):
            contribution = (model.weight[c] * (x[i] - base)).sum(0).detach()
            expected = torch.zeros(k * k, dtype=torch.float64).index_add_(0, seg.reshape(-1), contribution.reshape(-1))
            assert torch.allclose(ours[i], expected[seg], atol=1e-9)


def test_kernel_shap_exact_enumeration_gives_shapley_values():
    """On a non-additive game, enumeration must equal the Shapley formula computed directly."""
    model, x = small_cnn(5, torch.float64), images(1, 8, seed=2, dtype=torch.float64)
    seg = grid_segments(8, 2)  # 4 players
    ours = kernel_shap(model, x, 0, samples=16, segments=seg, baseline=0.0)

    def value(coalition):
        keep = torch.zeros(8, 8, dtype=torch.float64)
        for m in coalition:
            keep[seg == m] = 1
        with torch.no_grad():
            return float(model(x * keep)[0, 0])

    import math

    for m in range(4):
        others = [j for j in range(4) if j != m]
        phi = sum(math.factorial(len(s)) * math.factorial(3 - len(s)) / math.factorial(4)
                  * (value(s + (m,)) - value(s))
                  for r in range(4) for s in itertools.combinations(others, r))
        assert abs(float(ours[0][seg == m][0]) - phi) < 1e-10


def test_lime_without_ridge_on_linear_model_recovers_weight_times_difference():
    model, x = Linear((3, 8, 8), seed=4), images(1, 8, dtype=torch.float64)
    seg = grid_segments(8, 2)
    ours = lime(model, x, 2, samples=50, segments=seg, baseline=0.5, alpha=0.0)
    contribution = (model.weight[2] * (x[0] - 0.5)).sum(0).detach()
    expected = torch.zeros(4, dtype=torch.float64).index_add_(0, seg.reshape(-1), contribution.reshape(-1))
    assert torch.allclose(ours[0], expected[seg], atol=1e-9)
    shrunk = lime(model, x, 2, samples=50, segments=seg, baseline=0.5, alpha=1.0)
    assert float(shrunk[0].abs().max()) < float(ours[0].abs().max())  # the ridge shrinks


def test_slic_segmentation_runs_and_is_piecewise_constant():
    model, x = small_cnn(), images(1, 32)
    m = lime(model, x, 0, samples=12, segments="slic", n_segments=10)
    from skimage.segmentation import slic

    labels = torch.from_numpy(slic(x[0].permute(1, 2, 0).double().numpy(), n_segments=10, compactness=10.0,
                                   start_label=0, channel_axis=-1))
    for label in labels.unique():
        assert m[0][labels == label].unique().numel() == 1


# ------------------------------------------------------------------------------------------
# RISE


def test_rise_is_the_score_weighted_mask_average():
    model, x = small_cnn(6), images(2, 16, seed=3)
    ours = rise(model, x, [0, 4], samples=12, grid=4, probability=0.3, baseline=0.1, batch_size=5, seed=2)
    masks = rise_masks(12, (16, 16), grid=4, probability=0.3, seed=2)
    assert masks.min() >= 0 and masks.max() <= 1
    with torch.no_grad():
        for i, c in enumerate((0, 4)):
            scores = model(0.1 + masks[:, None] * (x[i] - 0.1))[:, c]
            expected = (scores[:, None, None] * masks).sum(0) / (12 * 0.3)
            assert float((ours[i] - expected).abs().max()) < TOL


def test_rise_masks_follow_the_paper():
    """Grid cells kept with probability p, upsampled to (s+1) cells, shifted by less than a cell."""
    masks = rise_masks(400, (20, 20), grid=5, probability=0.25, seed=0)
    assert masks.shape == (400, 20, 20)
    assert abs(float(masks.mean()) - 0.25) < 0.02
    # Upsampled bilinearly: the masks are smooth (neighbouring pixels differ by at most one step).
    assert float((masks[:, 1:] - masks[:, :-1]).abs().max()) <= 0.25 + 1e-6


def test_rise_expectation_on_a_constant_and_a_one_pixel_model():
    """E[S(x*M) M(p)] / p: a constant score c gives c everywhere; a model that reads one pixel
    (x = 1, baseline 0) gives E[M(p0) M(p)] / p, which is p far from p0 (independent cells)."""
    x = torch.ones((1, 3, 28, 28))
    const = rise(Constant(2.0), x, 0, samples=3000, grid=4, probability=0.5, seed=1, batch_size=500)
    assert abs(float(const.mean()) - 2.0) < 0.05

    probe = nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 1, bias=False))
    with torch.no_grad():
        probe[1].weight.zero_()
        probe[1].weight[0, 0 * 784 + 3 * 28 + 3] = 1.0  # channel 0, pixel (3, 3)
    sal = rise(probe, x, 0, samples=3000, grid=4, probability=0.5, seed=1, batch_size=500)[0]
    far = sal[21:, 21:]  # more than two cells (7 px) away from (3, 3): independent of it
    assert abs(float(far.mean()) - 0.5) < 0.05
    assert float(sal[3, 3]) > float(far.mean()) + 0.1


# ------------------------------------------------------------------------------------------
# Zeros, determinism, batching


@pytest.mark.parametrize("fn, kwargs", [
    (occlusion, {"window": 3, "stride": 2}),
    (lime, {"samples": 20, "segments": "grid", "n_segments": 9}),
    (kernel_shap, {"samples": 20, "segments": "grid", "n_segments": 9}),
    (kernel_shap, {"samples": 16, "segments": "grid", "n_segments": 4}),
])
def test_constant_model_gives_zeros_not_nan(fn, kwargs):
    m = fn(Constant(3.0), images(2, 12), 0, **kwargs)
    assert torch.isfinite(m).all() and float(m.abs().max()) < 1e-6


def test_rise_of_a_zero_score_is_zero():
    m = rise(Constant(0.0), images(2, 12), 0, samples=10, grid=3)
    assert torch.isfinite(m).all() and float(m.abs().max()) == 0.0


@pytest.mark.parametrize("fn, kwargs", [
    (rise, {"samples": 10, "grid": 3}),
    (lime, {"samples": 15, "segments": "grid", "n_segments": 9}),
    (kernel_shap, {"samples": 15, "segments": "grid", "n_segments": 9}),
])
def test_seeded_and_independent_of_batch_size(fn, kwargs):
    model, x = small_cnn(), images(3, 12)
    a = fn(model, x, 1, batch_size=4, seed=5, **kwargs)
    b = fn(model, x, 1, batch_size=50, seed=5, **kwargs)
    c = fn(model, x, 1, batch_size=4, seed=6, **kwargs)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-6)
    single = fn(model, x[1:2], 1, batch_size=4, seed=5, **kwargs)  # the rest of the batch does not matter
    assert torch.allclose(a[1:2], single, atol=1e-6)


def test_occlusion_independent_of_batch_size():
    model, x = small_cnn(), images(2, 12)
    a = occlusion(model, x, 1, window=4, stride=2, batch_size=1)
    b = occlusion(model, x, 1, window=4, stride=2, batch_size=1000)
    assert torch.allclose(a, b, atol=1e-6)


def test_user_segmentation_per_image_and_relabelled():
    model, x = small_cnn(), images(2, 12)
    seg = grid_segments(12, 2)
    per_image = torch.stack([seg * 10 + 7, seg])  # any labels: relabelled to 0..M-1
    a = kernel_shap(model, x, 0, samples=16, segments=per_image)
    b = kernel_shap(model, x, 0, samples=16, segments=seg)
    assert torch.allclose(a, b, atol=1e-6)


# ------------------------------------------------------------------------------------------
# Bad options: one-line errors that name the argument

BAD = [
    (occlusion, {"window": 0}, "window"),
    (occlusion, {"window": 40}, "window"),
    (occlusion, {"window": (2, 2, 2)}, "window"),
    (occlusion, {"window": 3, "stride": 4}, "stride"),
    (occlusion, {"baseline": "grey"}, "baseline"),
    (occlusion, {"baseline": torch.zeros(2, 5, 5)}, "baseline"),
    (occlusion, {"baseline": float("nan")}, "baseline"),
    (occlusion, {"batch_size": 0}, "batch_size"),
    (rise, {"samples": 0}, "samples"),
    (rise, {"probability": 0.0}, "probability"),
    (rise, {"probability": 1.5}, "probability"),
    (rise, {"grid": 0}, "grid"),
    (rise, {"grid": 50}, "grid"),
    (rise, {"seed": -1}, "seed"),
    (lime, {"samples": 1}, "samples"),
    (lime, {"kernel_width": 0}, "kernel_width"),
    (lime, {"alpha": -1.0}, "alpha"),
    (lime, {"segments": "quickshift"}, "segments"),
    (lime, {"segments": torch.zeros(5, 5, dtype=torch.long)}, "segments"),
    (lime, {"segments": torch.zeros(12, 12)}, "segments"),
    (lime, {"n_segments": 0}, "n_segments"),
    (lime, {"baseline": "median"}, "baseline"),
    (kernel_shap, {"samples": 1}, "samples"),
    (kernel_shap, {"compactness": -1.0}, "compactness"),
    (kernel_shap, {"seed": 1.5}, "seed"),
]


@pytest.mark.parametrize("fn, kwargs, name", BAD, ids=[f"{f.__name__}-{n}-{i}" for i, (f, _, n) in enumerate(BAD)])
def test_bad_options_raise_one_line_errors_naming_the_argument(fn, kwargs, name):
    defaults = {"window": 4, "stride": 2} if fn is occlusion else {}
    with pytest.raises(ValueError) as info:
        fn(small_cnn(), images(1, 12), 0, **{**defaults, **kwargs})
    message = str(info.value)
    assert "\n" not in message and name in message and message.startswith(fn.__name__)


def test_kernel_shap_warns_when_samples_are_too_few():
    with pytest.warns(UserWarning, match="too few"):
        kernel_shap(small_cnn(), images(1, 12), 0, samples=5, segments="grid", n_segments=16)
