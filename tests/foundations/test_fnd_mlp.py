import numpy as np
import pytest
import torch

from xaisurvey.foundations import (
    MLP,
    XOR_INPUTS,
    XOR_TARGETS,
    autograd_gradients,
    finite_difference_gradients,
    hand_built_xor,
    init_mlp,
    mlp_backward,
    mlp_loss,
    mlp_predict_proba,
    train_mlp,
)


def test_hand_built_xor_truth_table():
    out = hand_built_xor(XOR_INPUTS)
    np.testing.assert_array_equal(out["f1"], [1, 1, 1, 0])  # NAND
    np.testing.assert_array_equal(out["f2"], [0, 1, 1, 1])  # OR
    np.testing.assert_array_equal(out["g"], XOR_TARGETS)


def test_micro_model_by_hand():
    # one weight 0.5, bias 0, x = 2, y = 1: z = 1, p = sigmoid(1)
    net = MLP([np.array([[0.5]])], [np.array([0.0])])
    p = 1 / (1 + np.exp(-1.0))
    assert mlp_loss(net, np.array([[2.0]]), np.array([1.0])) == pytest.approx(-np.log(p), rel=1e-14)
    dW, db = mlp_backward(net, np.array([[2.0]]), np.array([1.0]))
    np.testing.assert_allclose(dW[0], [[(p - 1) * 2]], rtol=1e-14)
    np.testing.assert_allclose(db[0], [p - 1], rtol=1e-14)


def test_two_layer_micro_model_by_hand():
    # x = 1, hidden tanh(w1 x) with w1 = 0.5, output z = w2 h with w2 = 2, y = 0
    net = MLP([np.array([[0.5]]), np.array([[2.0]])], [np.zeros(1), np.zeros(1)], hidden="tanh")
    h = np.tanh(0.5)
    p = 1 / (1 + np.exp(-2 * h))
    dW, db = mlp_backward(net, np.array([[1.0]]), np.array([0.0]))
    np.testing.assert_allclose(dW[1], [[p * h]], rtol=1e-13)
    np.testing.assert_allclose(dW[0], [[p * 2 * (1 - h**2) * 1.0]], rtol=1e-13)
    np.testing.assert_allclose(db[0], [p * 2 * (1 - h**2)], rtol=1e-13)


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("sizes", [[2, 1], [2, 4, 1], [3, 5, 4, 1]])
def test_backprop_matches_autograd(hidden, sizes):
    rng = np.random.default_rng(1)
    net = init_mlp(sizes, seed=3, hidden=hidden)
    for b in net.biases:
        b[:] = rng.normal(size=b.shape)
    X = rng.normal(size=(7, sizes[0]))
    y = rng.integers(0, 2, size=7).astype(float)
    ours, theirs = mlp_backward(net, X, y), autograd_gradients(net, X, y)
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    t = torch.nn.functional.binary_cross_entropy_with_logits
    Xt = torch.tensor(X)
    a = Xt
    for l, (W, bb) in enumerate(zip(net.weights, net.biases)):
        a = a @ torch.tensor(W) + torch.tensor(bb)
        if l < len(net.weights) - 1:
            a = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[hidden](a)
    assert mlp_loss(net, X, y) == pytest.approx(float(t(a[:, 0], torch.tensor(y))), rel=1e-12)


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
def test_backprop_matches_finite_differences(hidden):
    rng = np.random.default_rng(2)
    net = init_mlp([2, 3, 1], seed=5, hidden=hidden)
    X, y = rng.normal(size=(6, 2)), rng.uniform(size=6)
    ours, fd = mlp_backward(net, X, y), finite_difference_gradients(net, X, y)
    for a, b in zip(ours[0] + ours[1], fd[0] + fd[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_training_solves_xor_and_leaves_input_alone():
    net0 = init_mlp([2, 4, 1], seed=0)
    saved = [W.copy() for W in net0.weights]
    net, hist = train_mlp(net0, XOR_INPUTS, XOR_TARGETS, lr=1.0, epochs=2000)
    for W, S in zip(net0.weights, saved):
        np.testing.assert_array_equal(W, S)
    assert hist.accuracy[-1] == 1.0
    assert hist.loss[-1] < 0.1 < hist.loss[0]
    assert len(hist.loss) == 2001
    np.testing.assert_array_equal(mlp_predict_proba(net, XOR_INPUTS) >= 0.5, XOR_TARGETS == 1)


def test_huge_logits_give_finite_loss_and_gradients():
    net = MLP([np.array([[1e4]])], [np.zeros(1)])
    X, y = np.array([[1.0], [-1.0]]), np.array([0.0, 1.0])
    loss = mlp_loss(net, X, y)
    assert loss == pytest.approx(1e4)
    dW, db = mlp_backward(net, X, y)
    assert np.isfinite(dW[0]).all() and np.isfinite(db[0]).all()


def test_bad_input():
    net = init_mlp([2, 3, 1])
    with pytest.raises(ValueError, match="shape"):
        mlp_loss(net, np.ones((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mlp_loss(net, np.ones((2, 2)), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="one output"):
        init_mlp([2, 3, 2])
    with pytest.raises(ValueError, match="hidden"):
        init_mlp([2, 1], hidden="swish")
    with pytest.raises(ValueError, match="expects"):
        MLP([np.ones((2, 3)), np.ones((4, 1))], [np.zeros(3), np.zeros(1)])
