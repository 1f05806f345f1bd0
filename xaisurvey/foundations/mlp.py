"""A multilayer perceptron written from scratch in NumPy: forward pass, backpropagation,
training.

Network (layers ``l = 1..L``, inputs as rows)::

    a_0 = X                      (n, d_0)
    z_l = a_{l-1} W_l + b_l      W_l: (d_{l-1}, d_l), b_l: (d_l,)
    a_l = h(z_l)  for l < L      h = tanh, sigmoid or relu
    p   = sigmoid(z_L)           d_L = 1: the probability of class 1

Loss: the mean binary cross-entropy ``-mean(y log p + (1 - y) log(1 - p))``, computed
from the logits ``z_L`` as ``mean(softplus(z_L) - y z_L)`` so that it never takes
``log(0)``.

Backpropagation (Rumelhart, Hinton and Williams, 1986) applies the chain rule layer by
layer, from the output back to the input::

    delta_L = (p - y) / n                      dLoss/dz_L
    dW_l    = a_{l-1}^T delta_l,   db_l = sum_rows(delta_l)
    delta_{l-1} = (delta_l W_l^T) * h'(z_{l-1})

The module also holds the hand-built XOR network of two perceptrons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .perceptron import step

__all__ = [
    "MLP",
    "init_mlp",
    "mlp_forward",
    "mlp_loss",
    "mlp_backward",
    "mlp_predict_proba",
    "finite_difference_gradients",
    "autograd_gradients",
    "TrainHistory",
    "train_mlp",
    "hand_built_xor",
]

_ACTIVATIONS: dict[
    str,
    tuple[
        Callable[[np.ndarray], np.ndarray],
        Callable[[np.ndarray, np.ndarray], np.ndarray],
    ],
] = {
    # name: (h(z), h'(z) given z and h(z)); the derivative reuses h(z) where that is
    # cheaper
    "tanh": (np.tanh, lambda z, a: 1.0 - a**2),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z, a: a * (1.0 - a)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, a: (z > 0).astype(float)),
}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for large |z|
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass
class MLP:
    """The parameters of a multilayer perceptron with one sigmoid output.

    Attributes:
        weights: ``W_l`` of shape (d_{l-1}, d_l), one per layer.
        biases: ``b_l`` of shape (d_l,), one per layer.
        hidden: the hidden activation, ``"tanh"``, ``"sigmoid"`` or ``"relu"``.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    hidden: str = "tanh"

    def __post_init__(self) -> None:
        if self.hidden not in _ACTIVATIONS:
            raise ValueError(
                f"hidden must be one of {sorted(_ACTIVATIONS)}, got {self.hidden!r}"
            )
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError(
                "weights and biases must be non-empty lists of the same length"
            )
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            if W.ndim != 2 or b.shape != (W.shape[1],):
                raise ValueError(
                    f"layer {l}: W must be (d_in, d_out) and b (d_out,), got {W.shape}"
                    f" and {b.shape}"
                )
            if l and W.shape[0] != self.weights[l - 1].shape[1]:
                raise ValueError(
                    f"layer {l} expects {W.shape[0]} inputs but layer {l - 1} gives"
                    f" {self.weights[l - 1].shape[1]}"
                )
        if self.weights[-1].shape[1] != 1:
            raise ValueError(
                "the last layer must have one output (the logit of class 1)"
            )

    @property
    def sizes(self) -> list[int]:
        """Layer widths ``[d_0, d_1, ..., d_L]``."""
        return [self.weights[0].shape[0]] + [W.shape[1] for W in self.weights]

    def copy(self) -> "MLP":
        """A deep copy (training never modifies the network it was given)."""
        return MLP(
            [W.copy() for W in self.weights],
            [b.copy() for b in self.biases],
            self.hidden,
        )

    def num_parameters(self) -> int:
        """Total number of weights and biases."""
        return int(sum(W.size + b.size for W, b in zip(self.weights, self.biases)))


def init_mlp(sizes: Sequence[int], seed: int = 0, hidden: str = "tanh") -> MLP:
    """A randomly initialised :class:`MLP` with layer widths ``sizes`` (last one must be
    1).

    Weights are drawn from ``N(0, 1 / d_in)`` (LeCun/Xavier-style scaling keeps the
    pre-activations of order one); biases start at zero.

    Example:
        >>> net = init_mlp([2, 4, 1], seed=0)
        >>> net.sizes, net.num_parameters()
        ([2, 4, 1], 17)
    """
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(
            f"sizes must list at least two positive widths, got {list(sizes)}"
        )
    rng = np.random.default_rng(seed)
    weights = [
        rng.normal(0.0, 1.0 / np.sqrt(m), size=(m, n))
        for m, n in zip(sizes[:-1], sizes[1:])
    ]
    biases = [np.zeros(n) for n in sizes[1:]]
    return MLP(weights, biases, hidden)


def _check_inputs(mlp: MLP, X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != mlp.sizes[0]:
        raise ValueError(f"X must have shape (n, {mlp.sizes[0]}), got {X.shape}")
    return X


def _check_targets(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"y must have {X.shape[0]} entries (one per row of X), got {y.size}"
        )
    if ((y < 0) | (y > 1)).any():
        raise ValueError("y must lie in [0, 1] (class-1 labels or probabilities)")
    return y


def mlp_forward(
    mlp: MLP, X: np.ndarray
) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """Forward pass. Returns ``p`` (shape (n,)) and the cache
    ``{"a": [a_0..a_{L-1}], "z": [z_1..z_L]}``.

    The cache keeps every layer's input and pre-activation: the backward pass needs
    them.

    Example:
        >>> net = init_mlp([2, 3, 1], seed=0)
        >>> p, cache = mlp_forward(net, np.zeros((5, 2)))
        >>> p.shape, len(cache["a"]), len(cache["z"])
        ((5,), 2, 2)
    """
    X = _check_inputs(mlp, X)
    h = _ACTIVATIONS[mlp.hidden][0]
    a, acts, pre = X, [], []
    for l, (W, b) in enumerate(zip(mlp.weights, mlp.biases)):
        acts.append(a)
        z = a @ W + b
        pre.append(z)
        a = h(z) if l < len(mlp.weights) - 1 else z
    return _sigmoid(a[:, 0]), {"a": acts, "z": pre}


def mlp_predict_proba(mlp: MLP, X: np.ndarray) -> np.ndarray:
    """The network's probability of class 1 for each row of ``X``, shape (n,)."""
    return mlp_forward(mlp, X)[0]


def mlp_loss(mlp: MLP, X: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of the network on ``(X, y)``, from the logits
    (never ``log 0``).

    Example:
        >>> net = init_mlp([2, 1], seed=0)
        >>> net.weights[0][:] = 0.0  # p = 0.5 everywhere: loss = log 2
        >>> round(mlp_loss(net, np.zeros((3, 2)), np.array([0, 1, 1])), 6)
        0.693147
    """
    X = _check_inputs(mlp, X)
    y = _check_targets(X, y)
    zL = mlp_forward(mlp, X)[1]["z"][-1][:, 0]
    softplus = np.maximum(zL, 0.0) + np.log1p(np.exp(-np.abs(zL)))
    return float(np.mean(softplus - y * zL))


def mlp_backward(
    mlp: MLP, X: np.ndarray, y: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Gradients of :func:`mlp_loss` for every weight and bias, by backpropagation.

    Returns:
        ``(dW, db)``: lists shaped like ``mlp.weights`` and ``mlp.biases``.

    Example:
        >>> net = init_mlp([2, 3, 1], seed=0)
        >>> dW, db = mlp_backward(net, np.ones((4, 2)), np.array([0, 1, 1, 0]))
        >>> [g.shape for g in dW]
        [(2, 3), (3, 1)]
    """
    X = _check_inputs(mlp, X)
    y = _check_targets(X, y)
    p, cache = mlp_forward(mlp, X)
    h, dh = _ACTIVATIONS[mlp.hidden]
    n = X.shape[0]
    delta = ((p - y) / n)[:, None]  # dLoss/dz_L for sigmoid + cross-entropy
    dW: list[np.ndarray] = [np.empty(0)] * len(mlp.weights)
    db: list[np.ndarray] = [np.empty(0)] * len(mlp.weights)
    for l in range(len(mlp.weights) - 1, -1, -1):
        dW[l] = cache["a"][l].T @ delta
        db[l] = delta.sum(axis=0)
        if l > 0:
            z_prev = cache["z"][l - 1]
            delta = (delta @ mlp.weights[l].T) * dh(z_prev, cache["a"][l])
    return dW, db


def finite_difference_gradients(
    mlp: MLP, X: np.ndarray, y: np.ndarray, eps: float = 1e-6
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Central finite differences ``(L(theta + eps) - L(theta - eps)) / (2 eps)`` for
    every parameter.

    Slow (two forward passes per parameter): for checking :func:`mlp_backward` on small
    networks. The error of the central difference is of order ``eps^2`` for smooth
    activations.
    """
    net = mlp.copy()
    out = []
    for group in (net.weights, net.biases):
        grads = []
        for P in group:
            G = np.zeros_like(P)
            for idx in np.ndindex(P.shape):
                saved = P[idx]
                P[idx] = saved + eps
                up = mlp_loss(net, X, y)
                P[idx] = saved - eps
                down = mlp_loss(net, X, y)
                P[idx] = saved
                G[idx] = (up - down) / (2 * eps)
            grads.append(G)
        out.append(grads)
    return out[0], out[1]


def autograd_gradients(
    mlp: MLP, X: np.ndarray, y: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The same gradients computed by ``torch.autograd`` in float64, as an independent
    reference.

    The network is rebuilt from ``torch`` operations (``nn.functional`` activations and
    ``binary_cross_entropy_with_logits``), so it shares no code with
    :func:`mlp_backward`.
    """
    import torch
    import torch.nn.functional as F

    X = _check_inputs(mlp, X)
    y = _check_targets(X, y)
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in mlp.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in mlp.biases]
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": F.relu}[mlp.hidden]
    a = torch.tensor(X, dtype=torch.float64)
    for l, (W, b) in enumerate(zip(Ws, bs)):
        a = a @ W + b
        if l < len(Ws) - 1:
            a = act(a)
    loss = F.binary_cross_entropy_with_logits(
        a[:, 0], torch.tensor(y, dtype=torch.float64)
    )
    loss.backward()
    return [W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]


@dataclass
class TrainHistory:
    """Loss and accuracy (threshold 0.5) after every epoch of :func:`train_mlp`, epoch 0
    = before training."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def train_mlp(
    mlp: MLP, X: np.ndarray, y: np.ndarray, lr: float = 0.5, epochs: int = 1000
) -> tuple[MLP, TrainHistory]:
    """Full-batch gradient descent on the cross-entropy:
    ``theta <- theta - lr * dLoss/dtheta``.

    Args:
        mlp: the starting network; it is not modified (training works on a copy).
        X: inputs, shape (n, d_0).
        y: targets in [0, 1], shape (n,).
        lr: learning rate.
        epochs: number of full-batch updates.

    Returns:
        The trained copy and its :class:`TrainHistory`.

    Example:
        >>> from xaisurvey.foundations import XOR_INPUTS, XOR_TARGETS
        >>> net, hist = train_mlp(
        ...     init_mlp([2, 4, 1], seed=0),
        ...     XOR_INPUTS,
        ...     XOR_TARGETS,
        ...     lr=1.0,
        ...     epochs=2000,
        ... )
        >>> hist.accuracy[-1]
        1.0
    """
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    X = _check_inputs(mlp, X)
    y = _check_targets(X, y)
    net = mlp.copy()
    history = TrainHistory()

    def record() -> None:
        # one forward pass for both numbers: the loss from the logits, the accuracy from
        # their sign
        zL = mlp_forward(net, X)[1]["z"][-1][:, 0]
        softplus = np.maximum(zL, 0.0) + np.log1p(np.exp(-np.abs(zL)))
        history.loss.append(float(np.mean(softplus - y * zL)))
        history.accuracy.append(float(np.mean((zL >= 0) == (y >= 0.5))))

    record()
    for _ in range(epochs):
        dW, db = mlp_backward(net, X, y)
        for l in range(len(net.weights)):
            net.weights[l] -= lr * dW[l]
            net.biases[l] -= lr * db[l]
        record()
    return net, history


def hand_built_xor(X: np.ndarray) -> dict[str, np.ndarray]:
    """XOR from two perceptrons and a third that combines them, with fixed weights.

    ``f1 = step(-x1 - x2 + 1.5)`` (NAND: below the upper line),
    ``f2 = step(x1 + x2 - 0.5)`` (OR: above the lower line),
    ``g = step(f1 + f2 - 1.5)`` (AND of the two), which is XOR on binary inputs.

    Args:
        X: inputs, shape (n, 2).

    Returns:
        ``{"f1": ..., "f2": ..., "g": ...}``, each of shape (n,).

    Example:
        >>> from xaisurvey.foundations import XOR_INPUTS
        >>> hand_built_xor(XOR_INPUTS)["g"].tolist()
        [0.0, 1.0, 1.0, 0.0]
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    if X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2), got {X.shape}")
    x1, x2 = X[:, 0], X[:, 1]
    f1 = step(-x1 - x2 + 1.5)
    f2 = step(x1 + x2 - 0.5)
    return {"f1": f1, "f2": f2, "g": step(f1 + f2 - 1.5)}
