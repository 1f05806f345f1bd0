"""Every method on a hand-weighted micro-model, against arrays worked out by hand.

The model: a 1x2x2 image x -> 1x1 convolution with 2 output channels (weights +1 and -1, no
bias), z1 = x, z2 = -x -> ReLU -> A1 = relu(x), A2 = relu(-x) -> global average pooling ->
linear layer W = [[1, 2], [3, -1]] (no bias). With x = [[1, -2], [3, 0]]:

    A1 = [[1, 0], [3, 0]],  A2 = [[0, 2], [0, 0]],  Z = 4 positions
    y0 = 1*mean(A1) + 2*mean(A2) = 1*1 + 2*0.5 = 2
    y1 = 3*mean(A1) - 1*mean(A2) = 3 - 0.5 = 2.5
    d y_c / d A^k_ij = W[c, k] / 4 everywhere.
"""
from __future__ import annotations

import torch
from torch import nn

from xaisurvey.attribution import cam, grad_cam, guided_backprop, guided_grad_cam, saliency, smoothgrad

X = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]]])


def micro() -> nn.Sequential:
    conv = nn.Conv2d(1, 2, 1, bias=False)
    fc = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        fc.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, -1.0]]))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).eval()


def t(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_forward_of_the_micro_model_matches_the_hand_computation() -> None:
    assert torch.equal(micro()(X), t([[2.0, 2.5]]))


def test_saliency_by_hand() -> None:
    # y0 = 1/4 sum relu(x) + 2/4 sum relu(-x): dy0/dx = 0.25 [x > 0] - 0.5 [x < 0]; at x = 0 PyTorch's ReLU gradient is 0.
    expected = t([[0.25, -0.5], [0.25, 0.0]])
    assert torch.equal(saliency(micro(), X, 0, absolute=False)[0, 0], expected)
    assert torch.equal(saliency(micro(), X, 0)[0, 0], expected.abs())
    # y1: 0.75 [x > 0] + 0.25 [x < 0]
    assert torch.equal(saliency(micro(), X, 1, absolute=False)[0, 0], t([[0.75, 0.25], [0.75, 0.0]]))


def test_grad_cam_by_hand() -> None:
    # class 0: alpha = mean(W[0]/4) = [0.25, 0.5]; 0.25*A1 + 0.5*A2 = [[0.25, 1.0], [0.75, 0]]
    assert torch.equal(grad_cam(micro(), X, 0, layer="1", upsample=None)[0], t([[0.25, 1.0], [0.75, 0.0]]))
    # class 1: alpha = [0.75, -0.25]; 0.75*A1 - 0.25*A2 = [[0.75, -0.5], [2.25, 0]] -> ReLU -> [[0.75, 0], [2.25, 0]]
    assert torch.equal(grad_cam(micro(), X, 1, layer="1", upsample=None)[0], t([[0.75, 0.0], [2.25, 0.0]]))
    assert torch.equal(grad_cam(micro(), X, 1, layer="1", upsample=None, relu=False)[0], t([[0.75, -0.5], [2.25, 0.0]]))
    # weights="sum": alpha = W[c] = [3, -1] -> [[3, -2], [9, 0]]
    assert torch.equal(grad_cam(micro(), X, 1, layer="1", upsample=None, relu=False, weights="sum")[0], t([[3.0, -2.0], [9.0, 0.0]]))


def test_grad_cam_at_a_layer_before_the_relu_uses_plain_gradients() -> None:
    # layer "0" = the convolution: z1 = x, z2 = -x; dy1/dz_k = W[1, k]/4 * [z_k > 0]
    # alpha1 = 0.75 * 2/4 = 0.375 (two positive x), alpha2 = -0.25 * 1/4 = -0.0625 (one negative x)
    # map = 0.375 x - 0.0625 (-x) = 0.4375 x = [[0.4375, -0.875], [1.3125, 0]] -> ReLU
    assert torch.equal(grad_cam(micro(), X, 1, layer="0", upsample=None)[0], t([[0.4375, 0.0], [1.3125, 0.0]]))


def test_cam_by_hand_and_equal_to_grad_cam_sum_without_relu() -> None:
    # M_c = sum_k W[c, k] A_k: class 0 -> A1 + 2 A2 = [[1, 4], [3, 0]]; class 1 -> 3 A1 - A2 = [[3, -2], [9, 0]]
    out = cam(micro(), X.expand(2, 1, 2, 2), [0, 1], upsample=None)
    assert torch.equal(out, t([[[1.0, 4.0], [3.0, 0.0]], [[3.0, -2.0], [9.0, 0.0]]]))


def test_three_relu_rules_by_hand() -> None:
    # class 1: signal at A is [0.75, -0.25] per channel (every position).
    #   gradient : g_k = W[1,k]/4 [z_k > 0] -> g1 = [[.75,0],[.75,0]], g2 = [[0,-.25],[0,0]]; dx = g1 - g2
    #   guided   : negative signal (channel 2) stopped -> g2 = 0; dx = g1
    #   deconvnet: mask ignored -> g1 = 0.75 everywhere, g2 = relu(-0.25) = 0; dx = g1
    net = micro()
    assert torch.equal(guided_backprop(net, X, 1, rule="gradient")[0, 0], t([[0.75, 0.25], [0.75, 0.0]]))
    assert torch.equal(guided_backprop(net, X, 1, rule="guided")[0, 0], t([[0.75, 0.0], [0.75, 0.0]]))
    assert torch.equal(guided_backprop(net, X, 1, rule="deconvnet")[0, 0], t([[0.75, 0.75], [0.75, 0.75]]))


def test_guided_grad_cam_by_hand_single_and_two_pass() -> None:
    # layer "1" (after the ReLU; no ReLU downstream): guided [[.75,0],[.75,0]] * Grad-CAM [[.75,0],[2.25,0]]
    out = guided_grad_cam(micro(), X, 1, layer="1", upsample="nearest")
    assert torch.equal(out[0, 0], t([[0.5625, 0.0], [1.6875, 0.0]]))
    # layer "0" (a ReLU runs after it): Grad-CAM must use the plain gradient, [[0.4375, 0], [1.3125, 0]];
    # guided [[.75,0],[.75,0]] times it = [[0.328125, 0], [0.984375, 0]]. (With the guided gradient at
    # the layer, alpha2 would be 0 and the map 0.375 x: [[0.28125, 0], [0.84375, 0]] instead.)
    out = guided_grad_cam(micro(), X, 1, layer="0", upsample="nearest")
    assert torch.equal(out[0, 0], t([[0.328125, 0.0], [0.984375, 0.0]]))


def test_smoothgrad_of_a_piecewise_linear_model_without_kinks_in_reach_is_the_gradient() -> None:
    # x far from 0 (|x| >= 1) and noise of 1% of the range (0.05) never flips a ReLU: every noisy gradient
    # is the gradient at x, so the average is exactly [[0.25, -0.5], [0.25, -0.5]] for class 0.
    x = t([[[[1.0, -2.0], [3.0, -1.0]]]])
    out = smoothgrad(micro(), x, 0, samples=20, noise_level=0.01)
    assert torch.allclose(out[0, 0], t([[0.25, -0.5], [0.25, -0.5]]), atol=1e-7)
