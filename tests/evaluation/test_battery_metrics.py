"""Known-answer tests of the battery's metrics: constructed maps and models with a score known by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from xaisurvey.evaluation import baselines, complexity, localisation, randomisation, road, robustness
from xaisurvey.evaluation.similarity import top_k_intersection


# ----------------------------------------------------------------------------- complexity

def test_gini_known_values():
    assert complexity.gini(torch.ones(10)) == 0.0
    assert complexity.gini(torch.zeros(3, 3)) == 0.0  # no mass: 0, never NaN
    one_hot = torch.zeros(8); one_hot[3] = -2.0  # sign ignored
    assert complexity.gini(one_hot) == pytest.approx(1 - 1 / 8)
    # [1, 2, 3, 4]: sum_k (2k - 5) a_k = -3 - 2 + 3 + 12 = 10; / (4 * 10) = 0.25
    assert complexity.gini(torch.tensor([4.0, 1.0, 3.0, 2.0])) == pytest.approx(0.25)


def test_gini_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        complexity.gini(torch.tensor([1.0, float("nan")]))


def test_discrete_entropy_known_values():
    assert complexity.discrete_entropy(torch.full((5,), 2.0)) == 0.0
    # four values in four equal bins: log 4
    assert complexity.discrete_entropy(torch.tensor([0.0, 1.0, 2.0, 3.0]), bins=4) == pytest.approx(math.log(4))
    # three in one bin, one in another: -(3/4 log 3/4 + 1/4 log 1/4)
    h = complexity.discrete_entropy(torch.tensor([0.0, 0.1, 0.2, 1.0]), bins=2)
    assert h == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


# ----------------------------------------------------------------------------- localisation

def test_relevance_mass_and_rank_known_values():
    mask = torch.zeros(4, 4, dtype=torch.bool); mask[:2, :2] = True  # 4 pixels
    a = torch.zeros(4, 4)
    a[0, 0], a[0, 1], a[3, 3], a[2, 2] = 3.0, 1.0, 4.0, -10.0
    # positive mass: 3 + 1 inside, 4 outside -> 0.5; negative relevance ignored
    assert localisation.relevance_mass_accuracy(a, mask) == pytest.approx(0.5)
    # top 4 pixels: 4 (out), 3 (in), 1 (in), then the first zero in row-major order (0, 2) (out)
    assert localisation.relevance_rank_accuracy(a, mask) == pytest.approx(0.5)
    perfect = mask.float() * 2
    assert localisation.relevance_mass_accuracy(perfect, mask) == 1.0
    assert localisation.relevance_rank_accuracy(perfect, mask) == 1.0
    assert localisation.relevance_mass_accuracy(-perfect, mask) == 0.0  # nothing positive


def test_localisation_rejects_empty_mask():
    with pytest.raises(ValueError, match="empty"):
        localisation.relevance_mass_accuracy(torch.rand(3, 3), torch.zeros(3, 3, dtype=torch.bool))


# ----------------------------------------------------------------------------- baselines

def test_baselines_known_maps():
    x = torch.zeros(2, 3, 6, 6); x[..., 3:] = 1.0
    sob = baselines.sobel_map(None, x)
    # a vertical step of height 1 in 3 channels: |Gx| = 4 per channel on the two columns beside it
    assert torch.allclose(sob[:, :, 2], torch.full((2, 6), 12.0))
    assert torch.allclose(sob[:, :, 3], torch.full((2, 6), 12.0))
    assert float(sob[:, :, [0, 1, 4, 5]].abs().max()) == 0.0
    centre = baselines.centre_map(None, torch.zeros(1, 1, 9, 9))
    assert float(centre[0, 4, 4]) == 1.0 and float(centre[0, 4, 4 + 2]) == pytest.approx(math.exp(-4 / (2 * 2.25**2)))
    r1, r2 = baselines.random_map(None, x), baselines.random_map(nn.Linear(1, 1), x + 1)
    assert torch.equal(r1, r2)  # ignores the model and the image


# ----------------------------------------------------------------------------- randomisation

def test_efficient_mprt_known_value():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.zeros(1, 1, 2, 2)

    def explain(model, x, target):  # trained: two values (entropy log 2); random: four (log 4)
        if model is net:
            return torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
        return torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])

    score = randomisation.efficient_mprt(explain, net, randomisation.fully_randomized(net), x, torch.tensor([0]), bins=4)
    assert score.tolist() == [pytest.approx((math.log(4) - math.log(2)) / math.log(2))]


def test_smooth_mprt_of_a_model_blind_map_is_one():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    rnd = randomisation.fully_randomized(net)
    scores = randomisation.smooth_mprt(lambda m, x, t: x[:, 0] ** 2, net, rnd, torch.rand(3, 1, 4, 4),
                                       torch.zeros(3, dtype=torch.long), samples=3)
    assert torch.allclose(scores, torch.ones(3, dtype=torch.float64))


def test_smooth_mprt_of_the_parameter_noise_is_low():
    net = nn.Sequential(nn.Flatten(), nn.Linear(256, 2))
    rnd = randomisation.fully_randomized(net)
    scores = randomisation.smooth_mprt(randomisation.parameter_noise_map, net, rnd, torch.rand(4, 1, 16, 16),
                                       torch.zeros(4, dtype=torch.long), samples=2)
    assert float(scores.abs().max()) < 0.25  # independent noise maps of 256 pixels


# ----------------------------------------------------------------------------- ROAD

def test_imputation_solves_the_neighbour_equation():
    img = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(0))
    hole = torch.zeros(5, 5, dtype=torch.bool); hole[1:4, 1:3] = True
    out = road.noisy_linear_imputation(img, hole, noise=0.0)
    assert torch.equal(out[:, ~hole], img[:, ~hole])
    for (i, j) in hole.nonzero().tolist():  # each filled pixel is the weighted mean of its neighbours
        total = sum(w * out[:, i + dy, j + dx] for (dy, dx), w in road.NEIGHBOUR_WEIGHTS.items())
        assert torch.allclose(out[:, i, j], total / sum(road.NEIGHBOUR_WEIGHTS.values()), atol=1e-6)


def test_imputation_of_a_linear_ramp_is_exact():
    ramp = torch.arange(6.0).repeat(6, 1)[None]  # harmonic: the imputation recovers it
    hole = torch.zeros(6, 6, dtype=torch.bool); hole[2:4, 1:5] = True
    assert torch.allclose(road.noisy_linear_imputation(ramp, hole, noise=0.0), ramp, atol=1e-5)


def test_road_orders_on_a_constructed_model():
    # the score is the mean of the left half: removing it (MoRF of a map that ranks it first)
    # replaces it with values imputed from the right half (zeros); LeRF removes the right half first.
    class Left(nn.Module):
        def forward(self, x):
            s = x[:, 0, :, :2].mean((1, 2))
            return torch.stack([10 * s, torch.zeros_like(s)], 1)

    img = torch.zeros(1, 4, 4); img[0, :, :2] = 1.0
    a = torch.zeros(4, 4); a[:, :2] = 1.0
    r = road.road_curves(Left(), img, 0, a, fractions=(0.5,), noise=0.0)
    p_full = torch.softmax(torch.tensor([10.0, 0.0]), 0)[0]
    assert float(r.lerf[0]) == pytest.approx(float(p_full))  # the left half is intact
    assert float(r.morf[0]) == pytest.approx(0.5)  # left half imputed from zeros: score 0


# ----------------------------------------------------------------------------- robustness

def test_shift_absorbed_model_is_the_same_function():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 3 * 3, 4))
    x = torch.rand(2, 2, 5, 5)
    shifted = robustness.shift_absorbed_model(net, -0.3, x)
    assert torch.allclose(shifted(x - 0.3), net(x), atol=1e-5)
    assert not torch.allclose(shifted[0].bias, net[0].bias)


def test_shift_absorbed_model_refuses_padding():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Flatten())
    with pytest.raises(ValueError, match="pads"):
        robustness.shift_absorbed_model(net, 0.5, torch.rand(1, 1, 4, 4))


def test_input_invariance_known_answers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x, y = torch.rand(3, 1, 6, 6), torch.tensor([0, 1, 2])

    def gradient(model, x, target):
        x = x.clone().requires_grad_(True)
        model(x).gather(1, target[:, None]).sum().backward()
        return x.grad[:, 0]

    def times_input(model, x, target):
        return gradient(model, x, target) * x[:, 0]

    assert float(robustness.input_invariance(gradient, net, x, y, shift=0.5).max()) < 1e-5
    # gradient x input: A'(x') = g * (x + c), so the change is |c g| / |g x| summed
    g = gradient(net, x, y)
    expected = (0.5 * g).abs().flatten(1).sum(1) / (g * x[:, 0]).abs().flatten(1).sum(1)
    got = robustness.input_invariance(times_input, net, x, y, shift=0.5)
    assert torch.allclose(got, expected.to(torch.float64), rtol=1e-4)


def test_fragility_known_answers():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x = torch.rand(2, 1, 4, 4)
    stable = robustness.fragility(lambda m, x, t: torch.arange(16.0).view(1, 4, 4).expand(x.shape[0], 4, 4),
                                  net, x, k=4, tries=2)
    assert stable.tolist() == [1.0, 1.0]
    follows_input = robustness.fragility(lambda m, x, t: x[:, 0], net, x, epsilon=1.0, k=4, tries=3)
    # with epsilon 1 the images become random 0/1 patterns: the top 4 of x rarely survive
    assert float(follows_input.max()) <= 1.0 and top_k_intersection(x[0, 0], x[0, 0], 4) == 1.0
    assert float(follows_input.min()) < 1.0
