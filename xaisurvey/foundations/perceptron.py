"""Rosenblatt's perceptron in NumPy: the step-function neuron and its error-driven
learning rule.

Model (Rosenblatt, 1958): ``f(x) = step(w . x + b)`` with
``step(z) = 1 if z >= 0 else 0``. Learning rule, applied to one sample ``(x, y)`` at a
time with learning rate ``eta``::

    w <- w + eta * (y - f(x)) * x
    b <- b + eta * (y - f(x))

The weights only move when the sample is misclassified. On linearly separable data the
rule stops after finitely many mistakes (Novikoff's theorem); on XOR it never stops
(Minsky and Papert, 1969).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "step",
    "perceptron_predict",
    "PerceptronResult",
    "train_perceptron",
    "XOR_INPUTS",
    "XOR_TARGETS",
]

#: The four binary inputs in truth-table order (0,0), (0,1), (1,0), (1,1), shape (4, 2).
XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
#: XOR of each row of :data:`XOR_INPUTS`, shape (4,).
XOR_TARGETS = np.array([0.0, 1.0, 1.0, 0.0])


def step(z: np.ndarray) -> np.ndarray:
    """The Heaviside step used by the perceptron: 1 where ``z >= 0``, else 0 (float
    array, same shape).

    Example:
        >>> step(np.array([-0.5, 0.0, 2.0])).tolist()
        [0.0, 1.0, 1.0]
    """
    return (np.asarray(z, dtype=float) >= 0).astype(float)


def perceptron_predict(w: np.ndarray, b: float, X: np.ndarray) -> np.ndarray:
    """Outputs ``step(X @ w + b)`` of a perceptron, shape (n,), for inputs ``X`` of
    shape (n, d).

    Example:
        >>> perceptron_predict(np.array([1.0, 1.0]), -1.5, XOR_INPUTS).tolist()  # AND
        [0.0, 0.0, 0.0, 1.0]
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    w = np.asarray(w, dtype=float)
    if X.shape[1] != w.size:
        raise ValueError(f"X has {X.shape[1]} features but w has {w.size} weights")
    return step(X @ w + b)


@dataclass
class PerceptronResult:
    """The outcome of :func:`train_perceptron`.

    Attributes:
        w: final weights, shape (d,).
        b: final bias.
        mistakes_per_epoch: number of misclassified samples met during each epoch
            (the updates).
        converged: True when an epoch passed with no mistake (the data are then
            separated).
        history: (w, b) after each epoch, for plotting how the boundary moves.
    """

    w: np.ndarray
    b: float
    mistakes_per_epoch: list[int]
    converged: bool
    history: list[tuple[np.ndarray, float]] = field(default_factory=list)


def train_perceptron(
    X: np.ndarray,
    y: np.ndarray,
    lr: float = 1.0,
    epochs: int = 100,
    w0: np.ndarray | None = None,
    b0: float = 0.0,
) -> PerceptronResult:
    """Rosenblatt's perceptron rule, one sample at a time, in the given order.

    Args:
        X: inputs, shape (n, d).
        y: labels in {0, 1}, shape (n,).
        lr: learning rate ``eta > 0``.
        epochs: maximum number of passes over the data; training stops early after an
            epoch without mistakes.
        w0: initial weights, shape (d,) (zeros when None).
        b0: initial bias.

    Returns:
        A :class:`PerceptronResult`. ``converged`` is False when every epoch had a
        mistake.

    Example:
        >>> # AND is separable
        >>> r = train_perceptron(XOR_INPUTS, np.array([0.0, 0.0, 0.0, 1.0]))
        >>> r.converged, perceptron_predict(r.w, r.b, XOR_INPUTS).tolist()
        (True, [0.0, 0.0, 0.0, 1.0])
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n, d), got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must contain only 0 and 1")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    w = np.zeros(X.shape[1]) if w0 is None else np.asarray(w0, dtype=float).copy()
    if w.shape != (X.shape[1],):
        raise ValueError(f"w0 must have shape ({X.shape[1]},), got {w.shape}")
    b = float(b0)
    mistakes: list[int] = []
    history: list[tuple[np.ndarray, float]] = []
    converged = False
    for _ in range(epochs):
        count = 0
        for xi, yi in zip(X, y):
            error = yi - float(xi @ w + b >= 0)
            if error != 0:
                w += lr * error * xi
                b += lr * error
                count += 1
        mistakes.append(count)
        history.append((w.copy(), b))
        if count == 0:
            converged = True
            break
    return PerceptronResult(
        w=w, b=b, mistakes_per_epoch=mistakes, converged=converged, history=history
    )
