"""Gradient descent on a function of a few variables, with the whole trajectory kept.

The update rule is ``x_{t+1} = x_t - lr * grad f(x_t)`` (Cauchy's method; see
Goodfellow, Bengio and Courville, *Deep Learning*, 2016, section 4.3). For a quadratic
``f(x) = 0.5 x^T A x`` with symmetric positive definite ``A`` the iteration converges
exactly when ``lr < 2 / lambda_max(A)``; :func:`quadratic_critical_lr` computes that
threshold so that a chapter can pick learning rates on both sides of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["GDResult", "gradient_descent", "Quadratic", "quadratic_critical_lr"]


@dataclass
class GDResult:
    """The outcome of :func:`gradient_descent`.

    Attributes:
        path: iterates, shape (steps + 1, d); row 0 is the starting point. Rows after a
            divergence (a non-finite iterate) are ``inf``/``nan`` as computed, never
            silently clipped.
        values: ``f`` at each iterate, shape (steps + 1,) (``nan`` where ``f`` was not
            given).
        diverged: True when an iterate became non-finite or ``f`` grew past
            ``divergence_bound``.
    """

    path: np.ndarray
    values: np.ndarray
    diverged: bool


def gradient_descent(
    grad: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    lr: float,
    steps: int,
    f: Callable[[np.ndarray], float] | None = None,
    divergence_bound: float = 1e12,
) -> GDResult:
    """Run ``steps`` iterations of plain gradient descent ``x <- x - lr * grad(x)``.

    Args:
        grad: the gradient of the objective, mapping shape (d,) to shape (d,).
        x0: the starting point, shape (d,).
        lr: the learning rate (step size) ``eta > 0``.
        steps: the number of updates (>= 0).
        f: the objective, only used to record ``values`` and to detect divergence.
        divergence_bound: ``|f|`` (or ``|x|`` when ``f`` is None) above which the run
            counts as diverged; the iteration then stops and the remaining rows repeat
            the last iterate.

    Returns:
        A :class:`GDResult` with the full path.

    Example:
        >>> import numpy as np
        >>> r = gradient_descent(lambda x: 2 * x, np.array([1.0]), lr=0.25, steps=2)
        >>> r.path[:, 0].tolist()  # x <- x - 0.25 * 2x = x / 2
        [1.0, 0.5, 0.25]
    """
    x = np.asarray(x0, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"x0 must be a 1-D array (one point), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x0 must be finite")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    path = np.empty((steps + 1, x.size))
    values = np.full(steps + 1, np.nan)
    path[0] = x
    if f is not None:
        values[0] = f(x)
    diverged = False
    for t in range(1, steps + 1):
        g = np.asarray(grad(x), dtype=float)
        if g.shape != x.shape:
            raise ValueError(f"grad returned shape {g.shape}, expected {x.shape}")
        x = x - lr * g
        path[t] = x
        if f is not None:
            values[t] = f(x)
        size = abs(values[t]) if f is not None else np.abs(x).max()
        if not np.isfinite(x).all() or not np.isfinite(size) or size > divergence_bound:
            diverged = True
            path[t + 1 :] = x  # the run stops here; keep the array rectangular
            values[t + 1 :] = values[t]
            break
    return GDResult(path=path, values=values, diverged=diverged)


@dataclass
class Quadratic:
    """The quadratic bowl ``f(x) = 0.5 (x - c)^T A (x - c)`` with its exact gradient
    ``A (x - c)``.

    Attributes:
        A: symmetric positive definite matrix, shape (d, d).
        center: the minimiser ``c``, shape (d,).

    Example:
        >>> import numpy as np
        >>> q = Quadratic(np.diag([1.0, 10.0]), np.zeros(2))
        >>> float(q(np.array([1.0, 1.0])))
        5.5
    """

    A: np.ndarray
    center: np.ndarray

    def __post_init__(self) -> None:
        self.A = np.asarray(self.A, dtype=float)
        self.center = np.asarray(self.center, dtype=float)
        d = self.center.size
        if self.A.shape != (d, d):
            raise ValueError(
                f"A must have shape ({d}, {d}) to match center, got {self.A.shape}"
            )
        if not np.allclose(self.A, self.A.T):
            raise ValueError("A must be symmetric")

    def __call__(self, x: np.ndarray) -> float:
        r = np.asarray(x, dtype=float) - self.center
        return float(0.5 * r @ self.A @ r)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """The gradient ``A (x - c)``, shape (d,)."""
        return self.A @ (np.asarray(x, dtype=float) - self.center)


def quadratic_critical_lr(A: np.ndarray) -> float:
    """The learning rate ``2 / lambda_max(A)`` above which gradient descent on
    ``0.5 x^T A x`` diverges.

    Along the eigenvector of ``lambda_max`` the error is multiplied by
    ``1 - lr * lambda_max`` per step, whose magnitude exceeds 1 exactly when
    ``lr > 2 / lambda_max``.

    Example:
        >>> import numpy as np
        >>> quadratic_critical_lr(np.diag([1.0, 10.0]))
        0.2
    """
    eig = np.linalg.eigvalsh(np.asarray(A, dtype=float))
    if eig.min() <= 0:
        raise ValueError("A must be positive definite (all eigenvalues > 0)")
    return float(2.0 / eig.max())
