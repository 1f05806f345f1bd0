"""Receptive fields: computed from the layer geometry, measured by the input gradient,
and the expressive power of stacked small kernels.

Analytic receptive field of a chain of convolutions and poolings (Araujo, Norris and
Sim, 2019; Luo et al., 2016). With ``r_0 = 1`` and ``j_0 = 1`` (one input pixel, spacing
of one pixel)::

    r_l = r_{l-1} + d_l (k_l - 1) j_{l-1}   receptive field side after layer l
    j_l = j_{l-1} s_l                       input pixels between neighbouring units

so two 3x3 stride-1 convolutions see 1 + 2 + 2 = 5 pixels: a 5x5 window.

Measured receptive field: the input pixels on which one output unit depends are those
where the gradient of that unit w.r.t. the input is non-zero (its support); the
gradient's magnitude is the *effective* receptive field of Luo et al. (2016).

Two stacked *linear* 3x3 cross-correlations act like one 5x5 cross-correlation whose
kernel is the full convolution of the two 3x3 kernels (:func:`compose_kernels`). They
have 18 weights, the 5x5 kernel 25, and rescaling ``(c k1, k2 / c)`` leaves the product
unchanged, so the reachable 5x5 kernels form a set of dimension at most 17 inside a
25-dimensional space: :func:`fit_stacked_kernels` finds, by alternating least squares,
the closest reachable kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .convolution import convolve2d

__all__ = [
    "RFLayer",
    "receptive_field",
    "layer_geometry",
    "RFMeasurement",
    "measure_receptive_field",
    "compose_kernels",
    "StackedFit",
    "fit_stacked_kernels",
]


@dataclass(frozen=True)
class RFLayer:
    """Receptive-field bookkeeping after one layer (one spatial axis).

    Attributes:
        kernel, stride, dilation: the layer's geometry.
        size: receptive field side ``r_l`` in input pixels.
        jump: input-pixel distance ``j_l`` between neighbouring output units.
    """

    kernel: int
    stride: int
    dilation: int
    size: int
    jump: int


def receptive_field(layers: Sequence[tuple[int, ...]]) -> list[RFLayer]:
    """Receptive field after each layer of a chain, from
    ``(kernel, stride[, dilation])`` tuples.

    Element-wise layers (ReLU, batch norm) do not change the receptive field and are
    left out. Padding does not change its size either (only where it lies relative to
    the border).

    Example:
        >>> [l.size for l in receptive_field([(3, 1), (3, 1)])]  # two 3x3 convolutions
        [3, 5]
        >>> # conv, 2x2 pool, conv
        >>> [l.size for l in receptive_field([(3, 1), (2, 2), (3, 1)])]
        [3, 4, 8]
    """
    size, jump, out = 1, 1, []
    for spec in layers:
        if not 2 <= len(spec) <= 3:
            raise ValueError(
                "each layer must be (kernel, stride) or (kernel, stride, dilation),"
                f" got {spec!r}"
            )
        kernel, stride = int(spec[0]), int(spec[1])
        dilation = int(spec[2]) if len(spec) == 3 else 1
        if kernel < 1 or stride < 1 or dilation < 1:
            raise ValueError(f"kernel, stride and dilation must be >= 1, got {spec!r}")
        size += dilation * (kernel - 1) * jump
        jump *= stride
        out.append(RFLayer(kernel, stride, dilation, size, jump))
    return out


def _first(v: int | tuple[int, ...]) -> int:
    return int(v if isinstance(v, int) else v[0])


def layer_geometry(
    model: "torch.nn.Module",
) -> list[tuple[int, int, int]]:  # noqa: F821
    """The ``(kernel, stride, dilation)`` of each convolution and pooling of a
    sequential model.

    Walks the model's leaf modules in registration order, so it is meant for chains
    (``nn.Sequential`` and nests of them). Element-wise layers are skipped; any other
    layer raises ``ValueError`` because its effect on the receptive field is unknown.
    Square kernels assumed (the first value of each pair is used).

    Example:
        >>> from torch import nn
        >>> layer_geometry(
        ...     nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
        ... )
        [(3, 1, 1), (2, 2, 1)]
    """
    from torch import nn

    elementwise = (
        nn.ReLU,
        nn.LeakyReLU,
        nn.GELU,
        nn.SiLU,
        nn.Sigmoid,
        nn.Tanh,
        nn.ReLU6,
        nn.ELU,
        nn.BatchNorm2d,
        nn.Identity,
        nn.Dropout,
        nn.Dropout2d,
    )
    geometry = []
    for name, m in model.named_modules():
        if list(m.children()):
            continue
        if isinstance(m, nn.Conv2d):
            geometry.append(
                (_first(m.kernel_size), _first(m.stride), _first(m.dilation))
            )
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            stride = m.stride if m.stride is not None else m.kernel_size
            dilation = getattr(m, "dilation", 1)
            geometry.append((_first(m.kernel_size), _first(stride), _first(dilation)))
        elif not isinstance(m, elementwise):
            raise ValueError(
                f"layer {name!r} ({type(m).__name__}) has no known receptive-field rule"
            )
    return geometry


@dataclass
class RFMeasurement:
    """The receptive field of one output unit measured by its input gradient.

    Attributes:
        gradient: ``|d unit / d input|`` summed over input channels, shape (H, W).
        support: ``gradient > 0``, shape (H, W).
        size: (rows, cols) of the smallest box holding the support (0, 0 if the gradient
            is zero).
        unit: (row, col) of the output unit in the output map.
    """

    gradient: np.ndarray
    support: np.ndarray
    size: tuple[int, int]
    unit: tuple[int, int]


def measure_receptive_field(
    model: "torch.nn.Module",  # noqa: F821
    input_shape: tuple[int, int, int],
    unit: tuple[int, int] | None = None,
    seed: int = 0,
) -> RFMeasurement:
    """Measure which input pixels one output unit of ``model`` depends on (backprop).

    The unit is the sum over channels of the output map at ``unit`` (default: the
    centre), the input a seeded standard-normal image of shape ``(1, *input_shape)``.
    The model is run in eval mode (batch-norm statistics untouched) and every module's
    training flag is restored afterwards; the gradient is taken w.r.t. the input only,
    so no parameter's ``.grad`` is touched.

    With ReLUs the support can be smaller than the analytic receptive field (units
    switched off by this input pass no gradient); for linear stacks they agree.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> m = measure_receptive_field(
        ...     nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)), (1, 15, 15)
        ... )
        >>> m.size
        (5, 5)
    """
    import torch

    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(
            f"input_shape must be (C, H, W) with positive sizes, got {input_shape!r}"
        )
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        g = torch.Generator().manual_seed(seed)
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        x = torch.randn((1, *input_shape), generator=g, dtype=dtype).requires_grad_(
            True
        )
        with torch.enable_grad():
            out = model(x)
            if out.ndim != 4:
                raise ValueError(
                    "the model must output feature maps (N, C, H, W), got shape"
                    f" {tuple(out.shape)}"
                )
            row, col = (
                unit if unit is not None else (out.shape[2] // 2, out.shape[3] // 2)
            )
            if not (0 <= row < out.shape[2] and 0 <= col < out.shape[3]):
                raise ValueError(
                    f"unit {(row, col)} lies outside the {tuple(out.shape[2:])}"
                    " output map"
                )
            (grad,) = torch.autograd.grad(out[0, :, row, col].sum(), x)
    finally:
        for m, flag in flags.items():
            m.training = flag
    gradient = grad[0].abs().sum(0).detach().numpy().astype(float)
    support = gradient > 0
    rows, cols = np.nonzero(support.any(1))[0], np.nonzero(support.any(0))[0]
    size = (
        (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
        if rows.size
        else (0, 0)
    )
    return RFMeasurement(
        gradient=gradient, support=support, size=size, unit=(int(row), int(col))
    )


def compose_kernels(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """The single kernel equivalent to cross-correlating with ``k1`` and then with
    ``k2`` (no padding).

    ``(x . k1) . k2 = x . K`` with ``K[u] = sum_{a + b = u} k1[a] k2[b]``: the full
    convolution of the two kernels, of shape ``(h1 + h2 - 1, w1 + w2 - 1)``
    (5x5 for two 3x3).

    Example:
        >>> compose_kernels(np.ones((3, 3)), np.ones((3, 3)))[0].tolist()
        [1.0, 2.0, 3.0, 2.0, 1.0]
    """
    k1, k2 = np.asarray(k1, dtype=float), np.asarray(k2, dtype=float)
    if k1.ndim != 2 or k2.ndim != 2:
        raise ValueError(f"kernels must be 2-D, got shapes {k1.shape} and {k2.shape}")
    return convolve2d(k1, k2, padding=(k2.shape[0] - 1, k2.shape[1] - 1))


@dataclass
class StackedFit:
    """The best two-kernel approximation of a target kernel found by
    :func:`fit_stacked_kernels`.

    Attributes:
        k1, k2: the two small kernels.
        composed: ``compose_kernels(k1, k2)``, the target's shape.
        residual: Frobenius norm ``||composed - target||``.
        relative_residual: ``residual / ||target||`` (0 for a zero target).
        restarts_residuals: the final residual of every restart, best first.
    """

    k1: np.ndarray
    k2: np.ndarray
    composed: np.ndarray
    residual: float
    relative_residual: float
    restarts_residuals: list[float]


def _composition_matrix(k: np.ndarray, other_shape: tuple[int, int]) -> np.ndarray:
    # compose_kernels(k, k2) is linear in k2: K[c + a, d + b] += k[a, b] k2[c, d], so
    # column (c, d) of the matrix is k shifted to offset (c, d)
    (h, w), (p, q) = k.shape, other_shape
    M = np.zeros((h + p - 1, w + q - 1, p, q))
    for c in range(p):
        for d in range(q):
            M[c : c + h, d : d + w, c, d] = k
    return M.reshape((h + p - 1) * (w + q - 1), p * q)


def fit_stacked_kernels(
    target: np.ndarray,
    small: int = 3,
    restarts: int = 20,
    iterations: int = 300,
    seed: int = 0,
) -> StackedFit:
    """Least-squares fit of ``target`` (shape (2 small - 1,) * 2) by the composition of
    two ``small`` kernels.

    Minimises ``||compose_kernels(k1, k2) - target||_F`` by alternating least squares:
    the composition is linear in ``k2`` for fixed ``k1`` (and vice versa, convolution
    commutes), so each half-step is an exact linear least-squares solve and the residual
    never increases. The problem is not convex, hence several seeded random restarts;
    the best is returned.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> reachable = compose_kernels(
        ...     rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
        ... )
        >>> fit_stacked_kernels(reachable, restarts=3).relative_residual < 1e-8
        True
    """
    target = np.asarray(target, dtype=float)
    side = 2 * small - 1
    if target.shape != (side, side):
        raise ValueError(
            f"target must have shape ({side}, {side}) for two {small}x{small} kernels,"
            f" got {target.shape}"
        )
    if restarts < 1 or iterations < 1:
        raise ValueError("restarts and iterations must be >= 1")
    rng = np.random.default_rng(seed)
    t = target.ravel()
    norm = float(np.linalg.norm(t))
    results = []
    for _ in range(restarts):
        k1 = rng.normal(size=(small, small))
        k2 = np.zeros((small, small))
        previous = np.inf
        for _ in range(iterations):
            k2 = np.linalg.lstsq(
                _composition_matrix(k1, (small, small)), t, rcond=None
            )[0].reshape(small, small)
            k1 = np.linalg.lstsq(
                _composition_matrix(k2, (small, small)), t, rcond=None
            )[0].reshape(small, small)
            current = float(
                np.linalg.norm(_composition_matrix(k1, (small, small)) @ k2.ravel() - t)
            )
            # stop at an exact fit or when an iteration no longer improves the residual
            if current <= 1e-12 * max(norm, 1.0) or previous - current <= 1e-14 * max(
                norm, 1.0
            ):
                break
            previous = current
        composed = compose_kernels(k1, k2)
        results.append((float(np.linalg.norm(composed - target)), k1, k2, composed))
    results.sort(key=lambda r: r[0])
    residual, k1, k2, composed = results[0]
    return StackedFit(
        k1=k1,
        k2=k2,
        composed=composed,
        residual=residual,
        relative_residual=residual / norm if norm > 0 else 0.0,
        restarts_residuals=[r[0] for r in results],
    )
