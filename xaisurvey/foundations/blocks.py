"""The building blocks of modern CNNs, from scratch in NumPy: softmax with
cross-entropy, SGD and Adam, batch normalisation, depthwise-separable and 1x1
convolutions, transposed convolution, residual connections and global average pooling.

Every function follows the definition in its paper and is checked against PyTorch in
``tests/foundations/test_fnd_blocks.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .convolution import correlate2d

__all__ = [
    "softmax",
    "cross_entropy",
    "cross_entropy_grad",
    "sgd_step",
    "AdamState",
    "adam_step",
    "batch_norm",
    "pointwise_conv",
    "depthwise_conv",
    "conv_cost",
    "conv_transpose2d",
    "global_avg_pool",
    "residual",
]


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, ``exp(z_c) / sum_c' exp(z_c')``, shifted by the
    maximum so that large logits do not overflow.

    Example:
        >>> softmax(np.array([1000.0, 1000.0])).tolist()
        [0.5, 0.5]
    """
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _check_labels(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != z.shape[:-1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"cross_entropy: labels must be integers of shape {z.shape[:-1]}, got"
            f" {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= z.shape[-1]):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {z.shape[-1]}), got"
            f" {labels.min()}..{labels.max()}"
        )
    return labels


def cross_entropy(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy ``-log softmax(z)[label]`` of logits ``z`` (N, C), computed
    with the log-sum-exp trick (never ``log(0)``).

    Example:
        >>> round(cross_entropy(np.zeros((1, 4)), np.array([2])), 4)  # log 4
        1.3863
    """
    z = np.asarray(z, dtype=float)
    labels = _check_labels(z, labels)
    m = z.max(axis=-1, keepdims=True)
    log_z = (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]
    picked = np.take_along_axis(z, labels[..., None], axis=-1)[..., 0]
    return float((log_z - picked).mean())


def cross_entropy_grad(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to the logits:
    ``(softmax(z) - onehot) / N``.

    Example:
        >>> cross_entropy_grad(np.zeros((1, 2)), np.array([0])).tolist()
        [[-0.5, 0.5]]
    """
    z = np.asarray(z, dtype=float)
    labels = _check_labels(z, labels)
    g = softmax(z)
    np.put_along_axis(
        g, labels[..., None], np.take_along_axis(g, labels[..., None], -1) - 1, -1
    )
    return g / z.shape[0]


def sgd_step(
    w: np.ndarray,
    grad: np.ndarray,
    velocity: np.ndarray | None = None,
    *,
    lr: float,
    momentum: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One step of stochastic gradient descent with (heavy-ball) momentum, PyTorch's
    convention: ``v <- momentum * v + grad``, ``w <- w - lr * v``. Returns ``(w, v)``.

    Example:
        >>> w, v = sgd_step(np.array([1.0]), np.array([2.0]), lr=0.1)
        >>> w.tolist(), v.tolist()
        ([0.8], [2.0])
    """
    if lr <= 0 or not 0 <= momentum < 1:
        raise ValueError(
            f"sgd_step: need lr > 0 and 0 <= momentum < 1, got lr={lr},"
            f" momentum={momentum}"
        )
    v = grad if velocity is None else momentum * velocity + grad
    return w - lr * v, v


@dataclass
class AdamState:
    """Adam's running moments and step count for one parameter array."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0
    history: list[float] = field(default_factory=list)


def adam_step(
    w: np.ndarray,
    grad: np.ndarray,
    state: AdamState | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> tuple[np.ndarray, AdamState]:
    """One Adam step (Kingma and Ba, 2015): bias-corrected moving averages of the
    gradient and of its square, ``w <- w - lr * m_hat / (sqrt(v_hat) +
    eps)``. Returns ``(w, state)``.

    Example:
        >>> w, s = adam_step(np.array([1.0]), np.array([5.0]), lr=0.1)
        >>> # the first step moves by lr, whatever the gradient's size
        >>> round(float(w[0]), 6)
        0.9
    """
    if lr <= 0 or not all(0 <= b < 1 for b in betas):
        raise ValueError(
            f"adam_step: need lr > 0 and betas in [0, 1), got lr={lr}, betas={betas}"
        )
    if state is None:
        state = AdamState(np.zeros_like(w, dtype=float), np.zeros_like(w, dtype=float))
    b1, b2 = betas
    state.t += 1
    state.m = b1 * state.m + (1 - b1) * grad
    state.v = b2 * state.v + (1 - b2) * grad**2
    m_hat = state.m / (1 - b1**state.t)
    v_hat = state.v / (1 - b2**state.t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), state


def batch_norm(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    *,
    eps: float = 1e-5,
    mean: np.ndarray | None = None,
    var: np.ndarray | None = None,
) -> np.ndarray:
    """Batch normalisation (Ioffe and Szegedy, 2015) of ``x`` (N, C, H, W) per channel:
    ``gamma * (x - mu) / sqrt(var + eps) + beta``. In training mode (``mean``/``var``
    None) the statistics are the batch's (biased variance, as PyTorch uses for
    normalising); in evaluation mode pass the running ``mean`` and ``var``.

    Example:
        >>> y = batch_norm(np.arange(8.0).reshape(2, 1, 2, 2), np.ones(1), np.zeros(1))
        >>> round(float(y.mean()), 6), round(float(y.std()), 3)
        (0.0, 1.0)
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 4 or gamma.shape != (x.shape[1],) or beta.shape != (x.shape[1],):
        raise ValueError(
            "batch_norm: x must be (N, C, H, W) with gamma, beta of shape (C,), got"
            f" {x.shape}"
        )
    if (mean is None) != (var is None):
        raise ValueError(
            "batch_norm: pass both mean and var (evaluation) or neither (training)"
        )
    mu = x.mean(axis=(0, 2, 3)) if mean is None else np.asarray(mean, dtype=float)
    sigma2 = x.var(axis=(0, 2, 3)) if var is None else np.asarray(var, dtype=float)
    shape = (1, -1, 1, 1)
    return gamma.reshape(shape) * (x - mu.reshape(shape)) / np.sqrt(
        sigma2.reshape(shape) + eps
    ) + beta.reshape(shape)


def pointwise_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A 1x1 convolution of ``x`` (C_in, H, W) with weights ``w`` (C_out, C_in): a
    linear map of the channels applied at every pixel independently.

    Example:
        >>> pointwise_conv(np.ones((2, 1, 1)), np.array([[1.0, 2.0]])).ravel().tolist()
        [3.0]
    """
    if x.ndim != 3 or w.ndim != 2 or w.shape[1] != x.shape[0]:
        raise ValueError(
            f"pointwise_conv: need x (C_in, H, W) and w (C_out, C_in), got {x.shape},"
            f" {w.shape}"
        )
    return np.einsum("oc,chw->ohw", w, x)


def depthwise_conv(
    x: np.ndarray, k: np.ndarray, *, padding: int = 0, stride: int = 1
) -> np.ndarray:
    """Depthwise convolution: each channel of ``x`` (C, H, W) is filtered by its own
    kernel ``k`` (C, kh, kw), with no mixing of channels (MobileNet's first half of a
    separable convolution; cross-correlation, as in deep learning).

    Example:
        >>> depthwise_conv(np.ones((2, 3, 3)), np.ones((2, 3, 3))).ravel().tolist()
        [9.0, 9.0]
    """
    if x.ndim != 3 or k.ndim != 3 or k.shape[0] != x.shape[0]:
        raise ValueError(
            f"depthwise_conv: need x (C, H, W) and k (C, kh, kw), got {x.shape},"
            f" {k.shape}"
        )
    return np.stack(
        [
            correlate2d(x[c], k[c], padding=padding, stride=stride)
            for c in range(x.shape[0])
        ]
    )


def conv_cost(
    c_in: int, c_out: int, k: int, h: int, w: int, *, separable: bool
) -> tuple[int, int]:
    """``(parameters, multiply-adds)`` of a k x k convolution from ``c_in`` to ``c_out``
    channels on an ``h`` x ``w`` output, without biases: standard, or depthwise k x k
    followed by pointwise 1x1.

    Example:
        >>> (
        ...     conv_cost(32, 64, 3, 10, 10, separable=False),
        ...     conv_cost(32, 64, 3, 10, 10, separable=True),
        ... )
        ((18432, 1843200), (2336, 233600))
    """
    if min(c_in, c_out, k, h, w) < 1:
        raise ValueError("conv_cost: every size must be a positive integer")
    params = c_in * k * k + c_in * c_out if separable else c_in * c_out * k * k
    return params, params * h * w


def conv_transpose2d(
    x: np.ndarray, k: np.ndarray, *, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Transposed convolution of one channel ``x`` (H, W) with kernel ``k`` (kh, kw):
    every input value adds a scaled copy of the kernel to the output, at positions
    ``stride`` apart; then ``padding`` rows and columns are cut from each border. It is
    the gradient (adjoint) of the strided convolution with the same kernel, and the
    upsampling step of VisualBackProp.

    Example:
        >>> conv_transpose2d(np.ones((2, 2)), np.ones((3, 3)), stride=2)[0].tolist()
        [1.0, 1.0, 2.0, 1.0, 1.0]
    """
    if x.ndim != 2 or k.ndim != 2 or stride < 1 or padding < 0:
        raise ValueError(
            f"conv_transpose2d: need 2-D x and k, stride >= 1, padding >= 0"
        )
    kh, kw = k.shape
    out = np.zeros(((x.shape[0] - 1) * stride + kh, (x.shape[1] - 1) * stride + kw))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i * stride : i * stride + kh, j * stride : j * stride + kw] += (
                x[i, j] * k
            )
    if padding:
        out = out[padding:-padding, padding:-padding]
    return out


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """Global average pooling: the mean of each channel of ``x`` (N, C, H, W) over all
    positions, (N, C). It is what makes CAM possible: a linear layer after it is a
    per-position sum.

    Example:
        >>> global_avg_pool(np.arange(4.0).reshape(1, 1, 2, 2)).tolist()
        [[1.5]]
    """
    if np.ndim(x) != 4:
        raise ValueError(
            f"global_avg_pool: x must be (N, C, H, W), got shape {np.shape(x)}"
        )
    return np.asarray(x, dtype=float).mean(axis=(2, 3))


def residual(x: np.ndarray, branch) -> np.ndarray:
    """A residual connection (He et al., 2016): ``x + branch(x)``. The branch must keep
    the shape; the gradient of the output with respect to ``x`` is the identity plus the
    branch's Jacobian, so it never vanishes through the shortcut.

    Example:
        >>> residual(np.ones(3), lambda v: 0 * v).tolist()
        [1.0, 1.0, 1.0]
    """
    y = branch(x)
    if np.shape(y) != np.shape(x):
        raise ValueError(
            f"residual: the branch must keep the shape {np.shape(x)}, got {np.shape(y)}"
        )
    return x + y
