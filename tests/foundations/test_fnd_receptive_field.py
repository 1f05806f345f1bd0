import numpy as np
import pytest
import torch
from torch import nn

from xaisurvey.foundations import (
    compose_kernels,
    correlate2d,
    fit_stacked_kernels,
    layer_geometry,
    measure_receptive_field,
    receptive_field,
)
from xaisurvey.foundations.receptive_field import _composition_matrix


def test_analytic_by_hand():
    assert [l.size for l in receptive_field([(3, 1)] * 3)] == [3, 5, 7]
    # conv3, pool2/2, conv3: 3, then 3 + 1*1 = 4, then 4 + 2*2 = 8; jumps 1, 2, 2
    layers = receptive_field([(3, 1), (2, 2), (3, 1)])
    assert [(l.size, l.jump) for l in layers] == [(3, 1), (4, 2), (8, 2)]
    assert receptive_field([(3, 1, 2)])[0].size == 5  # dilation 2 spreads a 3-tap kernel over 5 pixels


STACKS = [
    lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 1, 3)),
    lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Conv2d(2, 2, 3)),
    lambda: nn.Sequential(nn.Conv2d(1, 2, 5, stride=2), nn.Conv2d(2, 2, 3, dilation=2), nn.AvgPool2d(3, 1)),
    lambda: nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)),
]


@pytest.mark.parametrize("make", STACKS)
def test_measured_equals_analytic_for_linear_stacks(make):
    torch.manual_seed(0)
    model = make()
    analytic = receptive_field(layer_geometry(model))[-1].size
    measured = measure_receptive_field(model, (1, 41, 41))
    assert measured.size == (analytic, analytic)


def test_measure_leaves_model_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 1, 3))
    model.train()
    model[1].eval()  # mixed flags must come back as they were
    before = {k: v.clone() for k, v in model.state_dict().items()}
    measure_receptive_field(model, (1, 12, 12))
    assert [m.training for m in model.modules()] == [True, True, False, True, True]
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_measure_errors():
    with pytest.raises(ValueError, match="outside"):
        measure_receptive_field(nn.Conv2d(1, 1, 3), (1, 5, 5), unit=(3, 0))
    with pytest.raises(ValueError, match="feature maps"):
        measure_receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten()), (1, 5, 5))
    with pytest.raises(ValueError, match="receptive-field rule"):
        layer_geometry(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)))


def test_compose_equals_two_correlations_and_two_torch_convs():
    rng = np.random.default_rng(0)
    x, k1, k2 = rng.normal(size=(12, 11)), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    K = compose_kernels(k1, k2)
    assert K.shape == (5, 5)
    np.testing.assert_allclose(correlate2d(correlate2d(x, k1), k2), correlate2d(x, K), atol=1e-12)
    xt = torch.tensor(x)[None, None]
    two = torch.nn.functional.conv2d(torch.nn.functional.conv2d(xt, torch.tensor(k1)[None, None]), torch.tensor(k2)[None, None])
    np.testing.assert_allclose(two[0, 0].numpy(), correlate2d(x, K), atol=1e-12)


def test_reachable_set_has_dimension_17():
    # Jacobian of (k1, k2) -> compose(k1, k2) is [M(k2) | M(k1)]: rank 17 < 25 at a generic point
    rng = np.random.default_rng(0)
    k1, k2 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    J = np.hstack([_composition_matrix(k2, (3, 3)), _composition_matrix(k1, (3, 3))])
    assert np.linalg.matrix_rank(J) == 17


def test_fit_recovers_reachable_and_fails_on_generic():
    rng = np.random.default_rng(3)
    reachable = compose_kernels(rng.normal(size=(3, 3)), rng.normal(size=(3, 3)))
    assert fit_stacked_kernels(reachable, restarts=5).relative_residual < 1e-9
    fit = fit_stacked_kernels(rng.normal(size=(5, 5)), restarts=10)
    assert fit.relative_residual > 0.05
    np.testing.assert_allclose(fit.composed, compose_kernels(fit.k1, fit.k2))
    assert fit.residual == min(fit.restarts_residuals)
    with pytest.raises(ValueError, match="shape"):
        fit_stacked_kernels(np.ones((4, 4)))
