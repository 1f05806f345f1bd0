"""Deletion and insertion: exact curves on a model whose answer is computed by hand."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from xaisurvey.evaluation import (
    area_under_curve,
    centre_attribution,
    deletion_curve,
    insertion_curve,
    make_substrate,
    pixel_order,
    random_attribution,
)


class EvidenceCounter(nn.Module):
    """Two classes; logit 0 = sum of w * x over the pixels, logit 1 = 0, so p0 = sigmoid(w . x)."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(weights.clone())

    def forward(self, x):
        s = (x.sum(1) * self.w).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def trapezoid(values, dx):
    return sum((a + b) / 2 * dx for a, b in zip(values, values[1:]))


# Evidence on pixels 0 and 1 of a 2 x 3 image of ones.
W = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
IMAGE = torch.ones(1, 2, 3)


def test_deletion_of_the_perfect_ordering_is_the_hand_computed_area():
    model = EvidenceCounter(W)
    curve = deletion_curve(model, IMAGE, 0, W, substrate="zeros", steps=6)
    # k pixels deleted, evidence pixels first: remaining evidence 2, 1, 0, 0, 0, 0, 0
    expected = [sigmoid(2), sigmoid(1)] + [0.5] * 5
    assert curve.fractions.tolist() == pytest.approx([k / 6 for k in range(7)])
    assert curve.scores.tolist() == pytest.approx(expected)
    assert curve.area == pytest.approx(trapezoid(expected, 1 / 6))


def test_deletion_of_the_reverse_ordering_is_worse():
    model = EvidenceCounter(W)
    worst = deletion_curve(model, IMAGE, 0, -W, substrate="zeros", steps=6)
    # ties among the 4 zero-evidence pixels are broken by index, then the evidence goes last
    expected = [sigmoid(2)] * 5 + [sigmoid(1), 0.5]
    assert worst.scores.tolist() == pytest.approx(expected)
    best = deletion_curve(model, IMAGE, 0, W, substrate="zeros", steps=6)
    assert best.area < worst.area


def test_insertion_of_the_perfect_ordering():
    model = EvidenceCounter(W)
    curve = insertion_curve(model, IMAGE, 0, W, substrate="zeros", steps=6)
    expected = [0.5, sigmoid(1)] + [sigmoid(2)] * 5
    assert curve.scores.tolist() == pytest.approx(expected)
    assert curve.area == pytest.approx(trapezoid(expected, 1 / 6))


def test_logit_score():
    model = EvidenceCounter(W)
    curve = deletion_curve(model, IMAGE, 0, W, substrate="zeros", steps=6, score="logit")
    assert curve.scores.tolist() == pytest.approx([2, 1, 0, 0, 0, 0, 0])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.0, 2.0), min_size=9, max_size=9), st.integers(0, 10_000))
def test_perfect_ordering_beats_any_other(weights, seed):
    # With non-negative weights on an image of ones, deleting the largest weights first makes
    # the logit (hence the probability) as small as possible after every step.
    w = torch.tensor(weights).view(3, 3)
    model = EvidenceCounter(w)
    best = deletion_curve(model, torch.ones(1, 3, 3), 0, w, substrate="zeros", steps=9, batch_size=4)
    other = deletion_curve(model, torch.ones(1, 3, 3), 0, random_attribution(3, 3, seed=seed), substrate="zeros", steps=9)
    assert best.area <= other.area + 1e-12
    assert (best.scores <= other.scores + 1e-12).all()


def test_curve_endpoints_are_image_and_substrate():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    image = torch.rand(3, 10, 10)
    attribution = torch.rand(10, 10)
    with torch.no_grad():
        p_image = model(image[None]).softmax(1)[0, 2].item()
        p_blur = model(make_substrate(image, "blur")[None]).softmax(1)[0, 2].item()
    d = deletion_curve(model, image, 2, attribution, steps=7)
    i = insertion_curve(model, image, 2, attribution, steps=7)
    assert d.scores[0].item() == pytest.approx(p_image, rel=1e-5)
    assert d.scores[-1].item() == pytest.approx(p_blur, rel=1e-5)
    assert i.scores[0].item() == pytest.approx(p_blur, rel=1e-5)
    assert i.scores[-1].item() == pytest.approx(p_image, rel=1e-5)
    assert len(d.scores) == 8 and d.fractions[0] == 0 and d.fractions[-1] == 1


def test_model_is_left_as_it_was():
    model = EvidenceCounter(W).train()
    before = model.w.detach().clone()
    deletion_curve(model, IMAGE, 0, W, substrate="zeros", steps=3)
    assert model.training and model.w.requires_grad and model.w.grad is None
    assert torch.equal(model.w.detach(), before)


def test_substrates():
    image = torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0))
    assert make_substrate(image, "zeros").abs().sum() == 0
    mean = make_substrate(image, "mean")
    assert torch.allclose(mean[:, 0, 0], image.mean(dim=(1, 2)))
    constant = torch.full((3, 12, 12), 0.3)
    assert torch.allclose(make_substrate(constant, "blur"), constant)
    blurred = make_substrate(image, "blur")
    assert blurred.std() < image.std()  # blurring smooths
    with pytest.raises(ValueError, match="unknown substrate"):
        make_substrate(image, "noise")
    with pytest.raises(ValueError, match="substrate tensor"):
        make_substrate(image, torch.zeros(3, 5, 5))


def test_pixel_order_ties_by_index_and_channels_summed():
    assert pixel_order(torch.zeros(2, 2)).tolist() == [0, 1, 2, 3]
    a = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]])
    assert pixel_order(a).tolist() == [1, 0, 2, 3]


def test_baselines():
    assert torch.equal(random_attribution(4, 4, seed=3), random_attribution(4, 4, seed=3))
    assert not torch.equal(random_attribution(4, 4, seed=3), random_attribution(4, 4, seed=4))
    order = pixel_order(centre_attribution(4, 4)).tolist()
    assert set(order[:4]) == {5, 6, 9, 10}  # the four central pixels of a 4 x 4 image


def test_area_under_curve():
    assert area_under_curve(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])) == 1.0


def test_errors():
    model = EvidenceCounter(W)
    with pytest.raises(ValueError, match="attribution has shape"):
        deletion_curve(model, IMAGE, 0, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="target 5"):
        deletion_curve(model, IMAGE, 5, W, steps=2)
    with pytest.raises(ValueError, match="steps"):
        deletion_curve(model, IMAGE, 0, W, steps=0)
    with pytest.raises(ValueError, match="score"):
        deletion_curve(model, IMAGE, 0, W, score="softmax")
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        deletion_curve(model, IMAGE[None], 0, W)
    with pytest.raises(ValueError, match="NaN"):
        deletion_curve(model, IMAGE, 0, torch.full((2, 3), float("nan")))
