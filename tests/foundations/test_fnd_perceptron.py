import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaisurvey.foundations import XOR_INPUTS, XOR_TARGETS, perceptron_predict, step, train_perceptron


def test_step_convention():
    np.testing.assert_array_equal(step(np.array([-1e-9, 0.0, 3.0])), [0.0, 1.0, 1.0])


def test_one_update_by_hand():
    # w = 0, b = 0: f(x) = step(0) = 1, target 0, so w <- 0 - 0.5 x, b <- 0 - 0.5; then correct
    r = train_perceptron(np.array([[1.0, 2.0]]), np.array([0.0]), lr=0.5, epochs=5)
    np.testing.assert_array_equal(r.w, [-0.5, -1.0])
    assert r.b == -0.5
    assert r.mistakes_per_epoch == [1, 0]
    assert r.converged


@pytest.mark.parametrize("targets", [[0, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 0]])  # AND, OR, NAND
def test_learns_separable_gates(targets):
    y = np.array(targets, dtype=float)
    r = train_perceptron(XOR_INPUTS, y)
    assert r.converged
    np.testing.assert_array_equal(perceptron_predict(r.w, r.b, XOR_INPUTS), y)


def test_never_converges_on_xor():
    r = train_perceptron(XOR_INPUTS, XOR_TARGETS, epochs=200)
    assert not r.converged
    assert min(r.mistakes_per_epoch) >= 1
    assert (perceptron_predict(r.w, r.b, XOR_INPUTS) != XOR_TARGETS).any()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_converges_on_separable_data_with_margin(seed):
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=2)
    X = rng.uniform(-1, 1, size=(40, 2))
    margin = X @ w_true / np.linalg.norm(w_true)
    X = X[np.abs(margin) > 0.1]
    y = (X @ w_true > 0).astype(float)
    r = train_perceptron(X, y, epochs=2000)
    assert r.converged
    np.testing.assert_array_equal(perceptron_predict(r.w, r.b, X), y)


def test_input_not_modified_and_errors():
    w0 = np.array([0.1, 0.2])
    train_perceptron(XOR_INPUTS, XOR_TARGETS, w0=w0, epochs=3)
    np.testing.assert_array_equal(w0, [0.1, 0.2])
    with pytest.raises(ValueError, match="only 0 and 1"):
        train_perceptron(XOR_INPUTS, np.array([0, 2, 1, 0]))
    with pytest.raises(ValueError, match="shape"):
        train_perceptron(XOR_INPUTS, np.array([0, 1]))
    with pytest.raises(ValueError, match="features"):
        perceptron_predict(np.ones(3), 0.0, XOR_INPUTS)
