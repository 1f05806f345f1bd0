"""Max and average pooling in NumPy, as ``torch.nn.functional.max_pool2d`` /
``avg_pool2d`` compute them.

A pooling layer slides a ``size x size`` window with stride ``s`` over every channel
separately and replaces the window by one number: its maximum or its mean. It has no
parameters. The output size follows the convolution formula
``floor((n - size) / s) + 1`` (no padding here).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .convolution import conv_output_size

__all__ = ["pool2d", "max_pool2d", "avg_pool2d"]


def pool2d(
    x: np.ndarray,
    size: int,
    stride: int | None = None,
    op: Literal["max", "avg"] = "max",
) -> np.ndarray:
    """Pool the last two axes of ``x`` (..., H, W) with a ``size x size`` window.

    Args:
        x: feature maps, shape (..., H, W); leading axes (batch, channels) are pooled
            separately.
        size: window side.
        stride: step between windows; ``None`` means ``size`` (non-overlapping windows,
            PyTorch's default).
        op: ``"max"`` or ``"avg"``.

    Returns:
        Shape (..., H_out, W_out) with ``H_out = floor((H - size) / stride) + 1``.

    Example:
        >>> x = np.array([[1.0, 2.0, 5.0, 6.0], [3.0, 4.0, 7.0, 8.0]])
        >>> pool2d(x, 2, op="max").tolist(), pool2d(x, 2, op="avg").tolist()
        ([[4.0, 8.0]], [[2.5, 6.5]])
    """
    if op not in ("max", "avg"):
        raise ValueError(f"op must be 'max' or 'avg', got {op!r}")
    x = np.asarray(x, dtype=float)
    if x.ndim < 2:
        raise ValueError(f"x must have at least two axes (H, W), got shape {x.shape}")
    stride = size if stride is None else stride
    h_out = conv_output_size(x.shape[-2], size, 0, stride)
    w_out = conv_output_size(x.shape[-1], size, 0, stride)
    windows = sliding_window_view(x, (size, size), axis=(-2, -1))[
        ..., ::stride, ::stride, :, :
    ]
    windows = windows[..., :h_out, :w_out, :, :]
    return windows.max(axis=(-2, -1)) if op == "max" else windows.mean(axis=(-2, -1))


def max_pool2d(x: np.ndarray, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Max pooling: the largest value of each window (see :func:`pool2d`)."""
    return pool2d(x, size, stride, "max")


def avg_pool2d(x: np.ndarray, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Average pooling: the mean of each window (see :func:`pool2d`)."""
    return pool2d(x, size, stride, "avg")
