import numpy as np
import pytest

from xaisurvey.foundations import Quadratic, gradient_descent, quadratic_critical_lr


def test_exact_path_on_parabola():
    # f(x) = x^2, grad 2x, lr 0.25: every step halves x exactly
    r = gradient_descent(lambda x: 2 * x, np.array([1.0]), lr=0.25, steps=4, f=lambda x: float(x @ x))
    np.testing.assert_array_equal(r.path[:, 0], [1.0, 0.5, 0.25, 0.125, 0.0625])
    np.testing.assert_array_equal(r.values, [1.0, 0.25, 0.0625, 0.015625, 0.00390625])
    assert not r.diverged


@pytest.mark.parametrize("lr", [0.05, 0.15, 0.19, 0.21, 0.3])
def test_diagonal_quadratic_matches_closed_form(lr):
    # on 0.5 x^T diag(l) x each coordinate follows x_t = (1 - lr l)^t x_0
    lam = np.array([1.0, 10.0])
    q = Quadratic(np.diag(lam), np.zeros(2))
    x0 = np.array([1.5, -0.8])
    r = gradient_descent(q.grad, x0, lr=lr, steps=25, f=q, divergence_bound=np.inf)
    t = np.arange(26)[:, None]
    np.testing.assert_allclose(r.path, (1 - lr * lam) ** t * x0, rtol=1e-12, atol=1e-300)
    converges = lr < quadratic_critical_lr(np.diag(lam))
    assert (abs(r.path[-1]).max() < abs(x0).max()) == converges


def test_critical_lr_and_gradient():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    assert quadratic_critical_lr(A) == pytest.approx(2 / np.linalg.eigvalsh(A).max())
    q = Quadratic(A, np.array([1.0, -1.0]))
    x = np.array([0.3, 0.7])
    eps = 1e-6
    fd = [(q(x + eps * e) - q(x - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(q.grad(x), fd, rtol=1e-8)


def test_divergence_is_detected_and_path_stays_rectangular():
    q = Quadratic(np.diag([1.0, 10.0]), np.zeros(2))
    r = gradient_descent(q.grad, np.array([1.0, 1.0]), lr=0.5, steps=200, f=q, divergence_bound=1e6)
    assert r.diverged
    assert r.path.shape == (201, 2)
    assert np.isfinite(r.path).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x0=np.array([[1.0]]), lr=0.1, steps=1), "1-D"),
        (dict(x0=np.array([np.nan]), lr=0.1, steps=1), "finite"),
        (dict(x0=np.array([1.0]), lr=-0.1, steps=1), "lr"),
        (dict(x0=np.array([1.0]), lr=0.1, steps=-1), "steps"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradient_descent(lambda x: x, **kwargs)


def test_bad_quadratic():
    with pytest.raises(ValueError, match="symmetric"):
        Quadratic(np.array([[1.0, 2.0], [0.0, 1.0]]), np.zeros(2))
    with pytest.raises(ValueError, match="positive definite"):
        quadratic_critical_lr(np.diag([1.0, -1.0]))
