"""Path methods: Gradient x Input, Integrated Gradients, expected gradients and DeepLIFT.

Checked against captum (IntegratedGradients, InputXGradient, DeepLift), against known answers
(a linear model, the one-neuron saturation example of Sundararajan et al.), against their axioms
(completeness, summation-to-delta) and for the memory bound of ``internal_batch_size``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import xaisurvey.attribution as xa
from xaisurvey.attribution import DeepLiftWarning, completeness_gap, path_baseline, path_rule

captum_attr = pytest.importorskip("captum.attr")

RULES = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]


def _net(pool: nn.Module | None = None, seed: int = 0, inplace: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(inplace=inplace), pool or nn.AvgPool2d(2),
        nn.Conv2d(5, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4),
    ).eval()


def _x(n: int = 3, size: int = 10, seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _captum(cls, model, *args, **kwargs):  # noqa: ANN001
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum's notes on requires_grad and hooks
        return cls(model).attribute(*args, **kwargs).detach()


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# --- agreement with captum ---------------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES)
def test_integrated_gradients_agrees_with_captum_for_every_rule(rule: str) -> None:
    model, x, target = _net(), _x(), [0, 1, 3]
    steps = 7
    for baseline in ("black", _x(seed=5)):
        ours = xa.integrated_gradients(model, x, target, steps=steps, rule=rule, baseline=baseline,
                                       internal_batch_size=5)
        kwargs = {} if isinstance(baseline, str) else {"baselines": baseline}
        theirs = _captum(captum_attr.IntegratedGradients, model, x, target=torch.tensor(target), n_steps=steps,
                         method=rule, **kwargs)
        if rule == "riemann_trapezoid":
            # captum's trapezoid weights are (1/2, 1, ..., 1, 1/2)/n, summing to 1 - 1/n; the
            # trapezoidal rule's are (1/2, 1, ..., 1, 1/2)/(n-1): ours = captum's * n/(n-1).
            assert _err(ours, theirs) > 0.05 * float(theirs.abs().max())
            theirs = theirs * steps / (steps - 1)
        assert _err(ours, theirs) < 1e-5 * max(1.0, float(theirs.abs().max()))


def test_captum_trapezoid_misses_completeness_on_a_linear_model_ours_does_not() -> None:
    model, x = _linear(), _x(2, 4, dtype=torch.float64)
    model = model.double()
    steps = 5
    exact = x * model[1].weight[2].detach().view(3, 4, 4)
    ours = xa.integrated_gradients(model, x, 2, steps=steps, rule="riemann_trapezoid")
    theirs = _captum(captum_attr.IntegratedGradients, model, x, target=2, n_steps=steps, method="riemann_trapezoid")
    assert _err(ours, exact) < 1e-12
    # captum's nodes come from a float32 linspace, hence 1e-8, not 1e-12
    assert _err(theirs, exact * (steps - 1) / steps) < 1e-8 < 1e-3 < _err(theirs, exact) / float(exact.abs().max())


def test_gradient_x_input_agrees_with_captum() -> None:
    model, x = _net(), _x()
    ours = xa.gradient_x_input(model, x, [0, 1, 3])
    theirs = _captum(captum_attr.InputXGradient, model, x, target=torch.tensor([0, 1, 3]))
    assert _err(ours, theirs) < 1e-5


@pytest.mark.parametrize("pool", ["avg", "adaptive_avg"])
@pytest.mark.parametrize("reference", ["black", "tensor"])
def test_deeplift_agrees_with_captum_on_relu_networks(pool: str, reference: str) -> None:
    model = _net(nn.AvgPool2d(2) if pool == "avg" else nn.AdaptiveAvgPool2d(4))
    x = _x()
    baseline = "black" if reference == "black" else _x(seed=7)
    ours = xa.deeplift(model, x, [0, 1, 3], baseline=baseline)
    kwargs = {} if reference == "black" else {"baselines": baseline}
    theirs = _captum(captum_attr.DeepLift, model, x, target=torch.tensor([0, 1, 3]), **kwargs)
    assert _err(ours, theirs) < 1e-5 * max(1.0, float(theirs.abs().max()))
    assert _err(ours, theirs) < 1e-3 * float(theirs.abs().max())  # and not because both are tiny


def test_deeplift_finds_relu_however_it_is_called() -> None:
    class Functional(nn.Module):
        def __init__(self, net: nn.Sequential) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = torch.relu_(self.net[0](x))
            b = self.net[3](self.net[2](a)).relu()
            return self.net[7](self.net[6](self.net[5](b)))

    x = _x()
    reference = xa.deeplift(_net(), x, 1)
    assert _err(xa.deeplift(_net(inplace=True), x, 1), reference) < 1e-6
    assert _err(xa.deeplift(Functional(_net()), x, 1), reference) < 1e-6


# --- axioms and known answers -------------------------------------------------------------------

def test_deeplift_summation_to_delta_is_exact() -> None:
    model = _net().double()
    x = _x(dtype=torch.float64)
    for baseline in ("black", "blur", "uniform", _x(seed=3, dtype=torch.float64)):
        attributions, gap = xa.deeplift(model, x, [0, 2, 3], baseline=baseline, return_gap=True)
        base = path_baseline(x, baseline)
        direct = completeness_gap(model, x, [0, 2, 3], attributions, base)
        assert float(gap.abs().max()) < 1e-12 and float(direct.abs().max()) < 1e-12
        # the output difference is not small: the gap is not zero because nothing changed
        scores = model(torch.cat([x, base])).detach()[:, 0]
        assert float((scores[:3] - scores[3:]).abs().max()) > 1e-4


def test_deeplift_warns_on_max_pool_and_the_gap_shows_it() -> None:
    model = _net(nn.MaxPool2d(2)).double()
    x = _x(dtype=torch.float64)
    # A random reference: with a black one every pooled window of the reference is constant (the
    # conv bias through a ReLU), and then the gradient through max pooling happens to be exact.
    reference = _x(seed=7, dtype=torch.float64)
    with pytest.warns(DeepLiftWarning, match="max_pool2d.*captum"):
        _, gap = xa.deeplift(model, x, 0, baseline=reference, return_gap=True)
    theirs = _captum(captum_attr.DeepLift, model, x, baselines=reference, target=0)
    delta = (model(x)[:, 0] - model(reference)[:, 0]).detach()
    captum_gap = theirs.reshape(3, -1).sum(1) - delta
    # Measured (captum 0.9): captum's DeepLift, despite its max-pool rule, gives the same
    # attributions as the plain gradient through max pooling, and neither sums to delta.
    assert _err(xa.deeplift(model, x, 0, baseline=reference), theirs) < 1e-10
    assert float(gap.abs().min()) > 0.1 * float(delta.abs().min())
    assert _err(gap, captum_gap) < 1e-10


def test_deeplift_warns_on_other_nonlinearities_and_without_relu() -> None:
    with pytest.warns(DeepLiftWarning, match="sigmoid"):
        xa.deeplift(nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Sigmoid(), nn.Flatten(), nn.Linear(2 * 8 * 8, 2)),
                    _x(), 0)
    with pytest.warns(DeepLiftWarning, match="no ReLU"):
        xa.deeplift(_linear(), _x(2, 4), 0)


def _linear(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).eval()


@pytest.mark.parametrize("rule", RULES)
def test_linear_model_ig_equals_gxi_equals_w_times_difference(rule: str) -> None:
    model = _linear().double()
    x, b = _x(2, 4, dtype=torch.float64), _x(2, 4, seed=9, dtype=torch.float64)
    w = model[1].weight[1].detach().view(3, 4, 4)
    assert _err(xa.integrated_gradients(model, x, 1, rule=rule, steps=3), w * x) < 1e-12
    assert _err(xa.integrated_gradients(model, x, 1, rule=rule, steps=3, baseline=b), w * (x - b)) < 1e-12
    assert _err(xa.gradient_x_input(model, x, 1), w * x) < 1e-12
    with pytest.warns(DeepLiftWarning):
        assert _err(xa.deeplift(model, x, 1, baseline=b), w * (x - b)) < 1e-12
    # expected gradients with one reference is the same
    assert _err(xa.expected_gradients(model, x, 1, baselines=b[:1], samples=3), w * (x - b[:1])) < 1e-12


class _Saturating(nn.Module):
    """The paper's one-variable example: f(x) = 1 - ReLU(1 - x), flat for x >= 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (1 - torch.relu(1 - x.flatten(1).sum(1, keepdim=True)))


def test_saturation_example_of_the_paper() -> None:
    model = _Saturating()
    x = torch.full((1, 1, 1, 1), 2.0, dtype=torch.float64)
    # f(0) = 0, f(2) = 1: gradient (and Gradient x Input) says 0, IG and DeepLIFT say 1.
    assert float(xa.gradient_x_input(model, x, 0).sum()) == 0.0
    assert float(xa.integrated_gradients(model, x, 0, rule="riemann_middle", steps=2).sum()) == pytest.approx(1.0, abs=1e-12)
    attributions, gap = xa.deeplift(model, x, 0, return_gap=True)
    assert float(attributions.sum()) == pytest.approx(1.0, abs=1e-12) and abs(float(gap)) < 1e-12


def test_completeness_gap_falls_as_steps_grow() -> None:
    model = _net(seed=2).double()
    x = _x(2, 8, dtype=torch.float64)
    steps = [2, 4, 8, 16, 32, 64]
    for rule in ("riemann_middle", "riemann_trapezoid", "gausslegendre"):
        gaps = [float(xa.integrated_gradients(model, x, 0, steps=n, rule=rule, return_gap=True)[1].abs().max())
                for n in steps]
        # "Monotone-ish": ReLU kinks make the integrand piecewise smooth, so a doubling may not
        # help much, but never hurts by more than 50 %, and 32x more steps cut the gap 10x.
        for before, after in zip(gaps, gaps[1:]):
            assert after <= 1.5 * before + 1e-12, (rule, gaps)
        assert gaps[-1] <= gaps[0] / 10, (rule, gaps)
    # the left and right rules are first order: their gaps have opposite signs at few steps on a
    # monotone integrand and the error shrinks like 1/n
    left = [float(xa.integrated_gradients(model, x, 0, steps=n, rule="riemann_left", return_gap=True)[1].abs().max())
            for n in (4, 64)]
    assert left[1] < left[0] / 4


def test_path_rule_weights_and_exactness() -> None:
    for rule in RULES:
        alphas, weights = path_rule(rule, 6)
        assert abs(weights.sum() - 1) < 1e-12 and ((alphas >= 0) & (alphas <= 1)).all()
    alphas, weights = path_rule("gausslegendre", 3)  # exact up to degree 5
    assert abs(float((weights * alphas**5).sum()) - 1 / 6) < 1e-12
    assert np.allclose(path_rule("riemann_left", 4)[0], [0, 0.25, 0.5, 0.75])


# --- memory, batching, determinism ---------------------------------------------------------------

class _Counting(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.net(x)


@pytest.mark.parametrize("method", ["integrated_gradients", "expected_gradients"])
def test_internal_batch_size_bounds_the_images_per_pass_and_not_the_result(method: str) -> None:
    model, x = _Counting(_net()), _x(3)
    function = getattr(xa, method)
    options = {"steps": 5} if method == "integrated_gradients" else {"samples": 5}
    results = []
    for size in (1, 2, 4, 7, 64):
        model.sizes.clear()
        results.append(function(model, x, [0, 1, 2], internal_batch_size=size, **options))
        assert max(model.sizes) == min(size, 15) and sum(model.sizes) == 15
    for other in results[1:]:
        assert _err(other, results[0]) < 1e-6


_MEMORY_CHILD = textwrap.dedent("""
    import json, sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    import xaisurvey.attribution as xa
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 2)).eval()
    x = torch.rand(4, 3, 64, 64)
    size = int(sys.argv[1])
    xa.integrated_gradients(net, x, 0, steps=16, internal_batch_size=size)
    def field(name):
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(name + ":"))
        return int(line.split()[1]) * 1024
    Path("/proc/self/clear_refs").write_text("5")
    before = field("VmRSS")
    xa.integrated_gradients(net, x, 0, steps=16, internal_batch_size=size)
    print(json.dumps(field("VmHWM") - before))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
def test_peak_memory_grows_with_internal_batch_size() -> None:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    peaks = {}
    for size in (2, 8, 32):
        proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(size)], capture_output=True, text=True,
                              env=env, check=True)
        peaks[size] = json.loads(proc.stdout.strip().splitlines()[-1])
    # one interpolated image of this network holds ~2 x 32 x 64 x 64 floats of activations (1 MiB);
    # the peak follows the chunk: 16x more rows per pass, several times the memory
    one_row = 2 * 32 * 64 * 64 * 4
    assert peaks[2] < peaks[8] < peaks[32], peaks
    assert peaks[2] < 8 * one_row and peaks[32] > 16 * one_row, peaks


def test_flat_input_gives_zeros_never_nan() -> None:
    model, x = _net(), torch.full((2, 3, 10, 10), 0.5)
    for attributions in (
        xa.integrated_gradients(model, x, 1, baseline=0.5, steps=4),
        xa.deeplift(model, x, 1, baseline=0.5),
        xa.integrated_gradients(model, torch.zeros_like(x), 1, steps=4),
        xa.gradient_x_input(model, torch.zeros_like(x), 1),
        xa.deeplift(model, torch.zeros_like(x), 1),
        xa.expected_gradients(model, x, 1, baselines=x[:1], samples=3),
    ):
        assert torch.isfinite(attributions).all() and float(attributions.abs().max()) == 0.0


def test_baselines_are_seeded_and_as_stated() -> None:
    x = _x(2, 16)
    u0, u1 = path_baseline(x, "uniform", seed=0), path_baseline(x, "uniform", seed=1)
    assert torch.equal(u0, path_baseline(x, "uniform", seed=0)) and not torch.equal(u0, u1)
    assert torch.equal(u0[0], u0[1]) and 0 <= float(u0.min()) and float(u0.max()) < 1
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert _err(path_baseline(flat, "blur", blur_sigma=2.0), flat) < 1e-6  # blur keeps a constant image
    blurred = path_baseline(x, "blur", blur_sigma=2.0)
    assert float(blurred.std()) < float(x.std()) / 2  # and smooths noise
    a = xa.expected_gradients(_net(), x, 0, samples=4, seed=3)
    assert torch.equal(a, xa.expected_gradients(_net(), x, 0, samples=4, seed=3))


def test_float64_inputs_stay_float64() -> None:
    model, x = _net().double(), _x(dtype=torch.float64)
    for attributions in (xa.integrated_gradients(model, x, 0, steps=3), xa.deeplift(model, x, 0),
                         xa.gradient_x_input(model, x, 0), xa.expected_gradients(model, x, 0, samples=2)):
        assert attributions.dtype == torch.float64


@pytest.mark.parametrize("call, match", [
    (lambda m, x: xa.integrated_gradients(m, x, 0, steps=1, rule="riemann_left"), "steps must be an int >= 2"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, steps=0), "steps must be an int >= 1"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, steps=2.5), "steps must be"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, rule="simpson"), "rule must be one of"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, baseline="white"), "baseline must be one of"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, baseline=torch.zeros(3, 5, 5)), "baseline must have shape"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, baseline=float("nan")), "baseline must be finite"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, internal_batch_size=0), "internal_batch_size must be"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, baseline="blur", blur_sigma=0), "blur_sigma must be"),
    (lambda m, x: xa.integrated_gradients(m, x, 0, return_gap="yes"), "return_gap must be"),
    (lambda m, x: xa.expected_gradients(m, x, 0, samples=0), "samples must be"),
    (lambda m, x: xa.expected_gradients(m, x, 0, baselines=torch.zeros(2, 3, 4, 4)), "baselines must be a tensor"),
    (lambda m, x: xa.deeplift(m, x, 0, baseline="zeros"), "baseline must be one of"),
])
def test_bad_options_give_one_line_errors_naming_the_argument(call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match) as info:
        call(_net(), _x(2))
    assert "\n" not in str(info.value)


def test_a_model_whose_input_gradient_is_an_expanded_view() -> None:
    class Total(nn.Module):  # the gradient of a sum is an expanded tensor of ones
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).sum(1, keepdim=True)

    x = _x(2, 4, dtype=torch.float64)
    assert _err(xa.integrated_gradients(Total(), x, 0, steps=2), x) < 1e-12
    assert _err(xa.gradient_x_input(Total(), x, 0), x) < 1e-12
    with pytest.warns(DeepLiftWarning, match="no ReLU"):
        assert _err(xa.deeplift(Total(), x, 0), x) < 1e-12
    assert _err(xa.expected_gradients(Total(), x, 0, baselines=torch.zeros_like(x[:1]), samples=2), x) < 1e-12
