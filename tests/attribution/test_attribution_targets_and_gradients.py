"""Targets in every accepted form, batch independence, and gradients checked by finite differences."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaisurvey.attribution import grad_cam, guided_backprop, guided_grad_cam, saliency, smoothgrad
from xaisurvey.attribution.guided_backprop import relu_backward_rule


@pytest.mark.parametrize(
    "method",
    [
        lambda m, x, t: saliency(m, x, t, absolute=False),
        lambda m, x, t: grad_cam(m, x, t, layer="features.4"),
        lambda m, x, t: guided_backprop(m, x, t),
        lambda m, x, t: guided_grad_cam(m, x, t, layer="features.0"),
        lambda m, x, t: smoothgrad(m, x, t, samples=2, noise_level=0.0),
    ],
    ids=["saliency", "grad_cam", "guided_backprop", "guided_grad_cam", "smoothgrad"],
)
def test_every_target_form_gives_the_per_image_result(method, tiny, images, request) -> None:
    one_by_one = torch.cat([method(tiny, images[i : i + 1], c) for i, c in enumerate([0, 3, 1])])
    expected_list = method(tiny, images, [0, 3, 1])
    # Each image gets its own gradient although the scores are summed: eval mode keeps images independent.
    assert torch.allclose(expected_list, one_by_one, atol=1e-6)
    assert torch.equal(method(tiny, images, torch.tensor([0, 3, 1])), expected_list)
    if "smoothgrad" not in request.node.name:  # smoothgrad applies a callable to its noisy copies, not to 3 rows
        assert torch.equal(method(tiny, images, lambda out: out[torch.arange(3), torch.tensor([0, 3, 1])]), expected_list)
    assert torch.equal(method(tiny, images, lambda out: out[:, 2]), method(tiny, images, 2))
    same = method(tiny, images, 2)
    assert torch.equal(method(tiny, images, torch.tensor(2)), same)
    assert torch.equal(method(tiny, images, (2, 2, 2)), same)


def central_differences(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        up = f(x)
        flat[i] = old - eps
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def smooth_net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 4, 3, stride=2), nn.Softplus(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).double().eval()


def test_saliency_matches_finite_differences() -> None:
    net = smooth_net()
    x = torch.rand(2, 2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = saliency(net, x, [2, 0], absolute=False)
    fd = central_differences(lambda z: net(z)[1, 0].item(), x.clone())  # image 1 only: rows are independent
    assert torch.allclose(ours[1], fd[1], atol=1e-8) and fd[0].abs().max() == 0


def test_grad_cam_weights_match_finite_differences_at_the_layer() -> None:
    net = smooth_net()
    body, head = net[:2], net[2:]
    x = torch.rand(1, 2, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    activation = body(x).detach()
    fd = central_differences(lambda a: head(a)[0, 1].item(), activation.clone())  # dy/dA, (1, 3, 7, 7)
    expected_sum = (fd.sum(dim=(2, 3)).view(1, 3, 1, 1) * activation).sum(1)
    expected_mean = expected_sum / 49
    got_sum = grad_cam(net, x, 1, layer="1", relu=False, weights="sum", upsample=None)
    got_mean = grad_cam(net, x, 1, layer="1", relu=False, upsample=None)
    assert torch.allclose(got_sum, expected_sum, atol=1e-8)
    assert torch.allclose(got_mean, expected_mean, atol=1e-9)
    assert torch.allclose(grad_cam(net, x, 1, layer="1", upsample=None), expected_mean.clamp(min=0), atol=1e-9)


def test_smoothgrad_is_the_average_of_gradients_at_noisy_points() -> None:
    # f(x) = sum x^2 (a callable target on an identity network): grad = 2 (x + e).
    # SmoothGrad = 2x + 2 mean(e);  SmoothGrad-Squared = 4 mean((x + e)^2) ~ 4 (x^2 + sigma^2).
    class Identity(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.scale * x.flatten(1)

    x = torch.rand(2, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    net = Identity().double()
    score = lambda out: (out**2).sum(1)  # noqa: E731
    level, n = 0.2, 4000
    sigma = level * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(2, 1, 1, 1)
    sg = smoothgrad(net, x, score, samples=n, noise_level=level, batch_size=1000)
    # mean(e) has standard deviation sigma / sqrt(n); 5 standard deviations of 2*mean(e):
    assert ((sg - 2 * x).abs() <= 5 * 2 * sigma / n**0.5).all()
    sq = smoothgrad(net, x, score, samples=n, noise_level=level, squared=True, batch_size=1000)
    excess = (sq - 4 * x**2).mean(dim=(1, 2, 3)) / 4  # ~ sigma^2 (plus a zero-mean term), averaged over 36 pixels
    assert torch.allclose(excess, sigma.view(2) ** 2, rtol=0.1)
    # Deterministic: the seed fixes the noise; batch_size does not change the result.
    assert torch.equal(sg, smoothgrad(net, x, score, samples=n, noise_level=level, batch_size=1000))
    assert torch.allclose(smoothgrad(net, x, score, samples=50, batch_size=7), smoothgrad(net, x, score, samples=50), atol=1e-12)
    assert not torch.equal(smoothgrad(net, x, score, samples=50, seed=1), smoothgrad(net, x, score, samples=50))


def test_plain_gradient_rule_passes_gradcheck() -> None:
    # Our ReLU Function with the "gradient" rule is the true derivative of ReLU (away from the kink).
    z = (torch.rand(20, dtype=torch.float64) + 0.1) * torch.tensor([1.0, -1.0] * 10, dtype=torch.float64)
    z.requires_grad_(True)

    def f(z: torch.Tensor) -> torch.Tensor:
        with relu_backward_rule("gradient"):
            return torch.relu(z * 1.0) * torch.arange(20, dtype=torch.float64)

    assert torch.autograd.gradcheck(f, (z,))
