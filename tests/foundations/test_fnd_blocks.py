"""Modern building blocks from scratch (NumPy) against PyTorch, an independent implementation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xaisurvey.foundations import (
    adam_step, batch_norm, conv_cost, conv_transpose2d, cross_entropy, cross_entropy_grad,
    depthwise_conv, global_avg_pool, pointwise_conv, residual, sgd_step, softmax,
)

RNG = np.random.default_rng(0)


def test_softmax_and_cross_entropy_match_torch_and_survive_large_logits() -> None:
    z, y = RNG.normal(size=(5, 7)) * 30, RNG.integers(0, 7, 5)
    zt = torch.tensor(z, requires_grad=True)
    loss = F.cross_entropy(zt, torch.tensor(y))
    loss.backward()
    assert np.allclose(softmax(z), torch.softmax(torch.tensor(z), 1).numpy())
    assert cross_entropy(z, y) == pytest.approx(loss.item(), rel=1e-12)
    assert np.allclose(cross_entropy_grad(z, y), zt.grad.numpy())
    assert np.isfinite(cross_entropy(np.array([[1e4, -1e4]]), np.array([1])))
    with pytest.raises(ValueError, match="labels"):
        cross_entropy(z, y + 7)


def test_sgd_with_momentum_matches_torch() -> None:
    w0, grads = RNG.normal(size=4), [RNG.normal(size=4) for _ in range(3)]
    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    w, v = w0, None
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        w, v = sgd_step(w, g, v, lr=0.1, momentum=0.9)
    assert np.allclose(w, p.detach().numpy())


def test_adam_matches_torch() -> None:
    w0, grads = RNG.normal(size=4), [RNG.normal(size=4) for _ in range(5)]
    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.01)
    w, state = w0, None
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        w, state = adam_step(w, g, state, lr=0.01)
    assert np.allclose(w, p.detach().numpy())


def test_batch_norm_matches_torch_in_both_modes() -> None:
    x = RNG.normal(size=(4, 3, 5, 5)) * 2 + 1
    gamma, beta = RNG.normal(size=3), RNG.normal(size=3)
    bn = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
    bn.train()
    assert np.allclose(batch_norm(x, gamma, beta), bn(torch.tensor(x)).detach().numpy())
    bn.eval()
    ours = batch_norm(x, gamma, beta, mean=bn.running_mean.numpy(), var=bn.running_var.numpy())
    assert np.allclose(ours, bn(torch.tensor(x)).detach().numpy())


def test_separable_convolution_matches_torch_groups_and_counts_its_cost() -> None:
    x, k, w = RNG.normal(size=(3, 8, 8)), RNG.normal(size=(3, 3, 3)), RNG.normal(size=(5, 3))
    ours = pointwise_conv(depthwise_conv(x, k, padding=1, stride=2), w)
    xt = torch.tensor(x)[None]
    dw = F.conv2d(xt, torch.tensor(k)[:, None], padding=1, stride=2, groups=3)
    theirs = F.conv2d(dw, torch.tensor(w)[:, :, None, None])[0].numpy()
    assert np.allclose(ours, theirs)
    standard = torch.nn.Conv2d(32, 64, 3, bias=False)
    separable = torch.nn.Sequential(torch.nn.Conv2d(32, 32, 3, groups=32, bias=False),
                                    torch.nn.Conv2d(32, 64, 1, bias=False))
    assert conv_cost(32, 64, 3, 10, 10, separable=False)[0] == sum(p.numel() for p in standard.parameters())
    assert conv_cost(32, 64, 3, 10, 10, separable=True)[0] == sum(p.numel() for p in separable.parameters())


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (2, 0), (3, 1)])
def test_transposed_convolution_matches_torch_and_is_the_adjoint(stride: int, padding: int) -> None:
    x, k = RNG.normal(size=(4, 5)), RNG.normal(size=(3, 3))
    theirs = F.conv_transpose2d(torch.tensor(x)[None, None], torch.tensor(k)[None, None], stride=stride,
                                padding=padding)[0, 0].numpy()
    ours = conv_transpose2d(x, k, stride=stride, padding=padding)
    assert np.allclose(ours, theirs)
    # <conv(u), x> == <u, conv_transpose(x)>: the transposed convolution is the adjoint.
    u = RNG.normal(size=ours.shape)
    conv_u = F.conv2d(torch.tensor(u)[None, None], torch.tensor(k)[None, None], stride=stride,
                      padding=padding)[0, 0].numpy()
    assert conv_u.shape == x.shape
    assert np.sum(conv_u * x) == pytest.approx(np.sum(u * ours))


def test_global_average_pooling_and_residual() -> None:
    x = RNG.normal(size=(2, 3, 4, 4))
    assert np.allclose(global_avg_pool(x), F.adaptive_avg_pool2d(torch.tensor(x), 1)[..., 0, 0].numpy())
    assert np.allclose(residual(x, lambda v: 2 * v), 3 * x)
    with pytest.raises(ValueError, match="keep the shape"):
        residual(x, lambda v: v[:, :1])
