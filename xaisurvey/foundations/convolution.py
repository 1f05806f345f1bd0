"""Reference convolution and cross-correlation in NumPy (1-D, 2-D, multi-channel),
padding and stride.

Definitions (finite signals, indices outside the signal are zero unless padded
otherwise)::

    convolution         (x * k)[n] = sum_i x[n - i] k[i]   (the kernel is flipped)
    cross-correlation   (x . k)[n] = sum_i x[n + i] k[i]   (what "conv" layers compute)

so ``convolve(x, k) == correlate(x, flip(k))``. In 2-D the flip is over both axes. A
layer with ``C`` input and ``O`` output channels correlates every input channel with its
own kernel and sums, ``y[o] = b[o] + sum_c x[c] . w[o, c]``, which is what
``torch.nn.functional.conv2d`` computes.

Output size along one axis (input ``n``, kernel ``k``, padding ``p`` on each side,
stride ``s``, dilation ``d``)::

    floor((n + 2p - d (k - 1) - 1) / s) + 1
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "PadMode",
    "conv_output_size",
    "pad",
    "correlate1d",
    "convolve1d",
    "correlate2d",
    "convolve2d",
    "conv2d_layer",
    "mean_filter",
]

PadMode = Literal["zeros", "replicate", "circular", "reflect"]
_NP_PAD_MODE = {
    "zeros": "constant",
    "replicate": "edge",
    "circular": "wrap",
    "reflect": "reflect",
}


def conv_output_size(
    n: int, kernel: int, padding: int = 0, stride: int = 1, dilation: int = 1
) -> int:
    """Length of a convolution's output along one axis:
    ``floor((n + 2p - d(k-1) - 1) / s) + 1``.

    Raises ``ValueError`` when the (padded) input is shorter than the (dilated) kernel.

    Example:
        >>> (
        ...     conv_output_size(128, 3),
        ...     conv_output_size(128, 3, padding=1),
        ...     conv_output_size(7, 3, stride=2),
        ... )
        (126, 128, 3)
    """
    for name, v, low in (
        ("n", n, 1),
        ("kernel", kernel, 1),
        ("padding", padding, 0),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    span = dilation * (kernel - 1) + 1
    if n + 2 * padding < span:
        raise ValueError(
            f"input of length {n} with padding {padding} is shorter than the kernel"
            f" span {span}"
        )
    return (n + 2 * padding - span) // stride + 1


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(pair) != 2 or any(
        not isinstance(p, (int, np.integer)) or p < 0 for p in pair
    ):
        raise ValueError(
            f"{name} must be a non-negative int or a pair of them, got {v!r}"
        )
    return int(pair[0]), int(pair[1])


def pad(
    x: np.ndarray, width: int | tuple[int, ...], mode: PadMode = "zeros"
) -> np.ndarray:
    """Pad the last ``len(width)`` axes of ``x`` (an int pads the last axis only) on
    both sides.

    Modes: ``"zeros"`` (constant 0), ``"replicate"`` (repeat the edge pixel),
    ``"circular"`` (wrap around: the opposite edge), ``"reflect"`` (mirror without
    repeating the edge), the ``padding_mode`` names of ``torch.nn.Conv2d``.

    Example:
        >>> pad(np.array([1.0, 2.0, 3.0]), 1, "replicate").tolist()
        [1.0, 1.0, 2.0, 3.0, 3.0]
        >>> pad(np.array([1.0, 2.0, 3.0]), 1, "circular").tolist()
        [3.0, 1.0, 2.0, 3.0, 1.0]
    """
    if mode not in _NP_PAD_MODE:
        raise ValueError(f"mode must be one of {sorted(_NP_PAD_MODE)}, got {mode!r}")
    widths = (width,) if isinstance(width, (int, np.integer)) else tuple(width)
    x = np.asarray(x, dtype=float)
    if len(widths) > x.ndim:
        raise ValueError(f"cannot pad {len(widths)} axes of a {x.ndim}-D array")
    spec = [(0, 0)] * (x.ndim - len(widths)) + [(int(w), int(w)) for w in widths]
    return np.pad(x, spec, mode=_NP_PAD_MODE[mode])


def correlate1d(
    x: np.ndarray,
    k: np.ndarray,
    padding: int = 0,
    stride: int = 1,
    mode: PadMode = "zeros",
) -> np.ndarray:
    """1-D cross-correlation ``y[n] = sum_i x[s n + i] k[i]`` of the padded signal,
    shape (n_out,).

    Example:
        >>> correlate1d(
        ...     np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, -1.0])
        ... ).tolist()
        [-2.0, -2.0]
    """
    x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
    if x.ndim != 1 or k.ndim != 1:
        raise ValueError(f"x and k must be 1-D, got shapes {x.shape} and {k.shape}")
    n_out = conv_output_size(x.size, k.size, padding, stride)
    windows = sliding_window_view(pad(x, padding, mode), k.size)[::stride][:n_out]
    return windows @ k


def convolve1d(
    x: np.ndarray,
    k: np.ndarray,
    padding: int = 0,
    stride: int = 1,
    mode: PadMode = "zeros",
) -> np.ndarray:
    """1-D convolution ``y[n] = sum_i x[n - i] k[i]``: cross-correlation with the
    flipped kernel.

    With ``padding = len(k) - 1`` this is the "full" convolution of ``numpy.convolve``.

    Example:
        >>> convolve1d(
        ...     np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, -1.0])
        ... ).tolist()
        [2.0, 2.0]
    """
    return correlate1d(x, np.asarray(k, dtype=float)[::-1], padding, stride, mode)


def correlate2d(
    x: np.ndarray,
    k: np.ndarray,
    padding: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
    mode: PadMode = "zeros",
) -> np.ndarray:
    """2-D cross-correlation of an image ``x`` (H, W) with a kernel ``k`` (kh, kw),
    shape (H_out, W_out).

    ``y[i, j] = sum_{u, v} x_pad[s_h i + u, s_w j + v] k[u, v]``.

    Example:
        >>> x = np.arange(16.0).reshape(4, 4)
        >>> # the 3x3 sum around each interior pixel
        >>> correlate2d(x, np.ones((3, 3))).tolist()
        [[45.0, 54.0], [81.0, 90.0]]
    """
    x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
    if x.ndim != 2 or k.ndim != 2:
        raise ValueError(
            f"x must be (H, W) and k (kh, kw), got shapes {x.shape} and {k.shape}"
        )
    return conv2d_layer(
        x[None], k[None, None], padding=padding, stride=stride, mode=mode
    )[0]


def convolve2d(
    x: np.ndarray,
    k: np.ndarray,
    padding: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
    mode: PadMode = "zeros",
) -> np.ndarray:
    """2-D convolution: :func:`correlate2d` with the kernel flipped on both axes.

    Example:
        >>> k = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
        >>> x = np.arange(9.0).reshape(3, 3)
        >>> # right vs left neighbour
        >>> float(correlate2d(x, k)[0, 0]), float(convolve2d(x, k)[0, 0])
        (5.0, 3.0)
    """
    return correlate2d(x, np.asarray(k, dtype=float)[::-1, ::-1], padding, stride, mode)


def conv2d_layer(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    padding: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
    mode: PadMode = "zeros",
) -> np.ndarray:
    """A convolution layer as ``torch.nn.functional.conv2d``: multi-channel correlation.

    ``y[o, i, j] = b[o] + sum_{c, u, v} x_pad[c, s_h i + u, s_w j + v] w[o, c, u, v]``.

    Args:
        x: input, shape (C, H, W) or (N, C, H, W).
        weight: kernels, shape (O, C, kh, kw).
        bias: shape (O,) or None.
        padding: pixels added on each side, an int or (ph, pw).
        stride: an int or (sh, sw).
        mode: how the padding is filled (see :func:`pad`).

    Returns:
        Shape (O, H_out, W_out), or (N, O, H_out, W_out) for a batch, with sizes from
        :func:`conv_output_size`.

    Example:
        >>> y = conv2d_layer(np.ones((3, 5, 5)), np.ones((16, 3, 3, 3)), padding=1)
        >>> # 27 ones inside, 12 at the corner
        >>> y.shape, float(y[0, 2, 2]), float(y[0, 0, 0])
        ((16, 5, 5), 27.0, 12.0)
    """
    x, weight = np.asarray(x, dtype=float), np.asarray(weight, dtype=float)
    batched = x.ndim == 4
    if not batched:
        x = x[None]
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(
            "x must be (C, H, W) or (N, C, H, W) and weight (O, C, kh, kw), got"
            f" {x.shape} and {weight.shape}"
        )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} channels but the kernels expect {weight.shape[1]}"
        )
    (ph, pw), (sh, sw) = _pair(padding, "padding"), _pair(stride, "stride")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be >= 1, got {stride!r}")
    kh, kw = weight.shape[2:]
    h_out = conv_output_size(x.shape[2], kh, ph, sh)
    w_out = conv_output_size(x.shape[3], kw, pw, sw)
    xp = pad(x, (ph, pw), mode)
    # windows: (N, C, H_out, W_out, kh, kw), views, no copies
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][
        :, :, :h_out, :w_out
    ]
    y = np.einsum("nchwuv,ocuv->nohw", windows, weight, optimize=True)
    if bias is not None:
        bias = np.asarray(bias, dtype=float)
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"bias must have shape ({weight.shape[0]},), got {bias.shape}"
            )
        y = y + bias[None, :, None, None]
    return y if batched else y[0]


def mean_filter(
    image: np.ndarray, size: int = 3, mode: PadMode = "replicate"
) -> np.ndarray:
    """Blur an image with the ``size x size`` mean (box) filter, every weight
    ``1 / size^2``.

    The output has the input's shape: the image is padded by ``size // 2`` on each side
    with ``mode``. Colour images (H, W, 3) are filtered channel by channel.

    Example:
        >>> # three ones among nine pixels
        >>> float(mean_filter(np.eye(3), mode="zeros")[1, 1])
        0.3333333333333333
    """
    if not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd positive int, got {size!r}")
    image = np.asarray(image, dtype=float)
    kernel = np.full((size, size), 1.0 / size**2)
    if image.ndim == 2:
        return correlate2d(image, kernel, padding=size // 2, mode=mode)
    if image.ndim == 3:
        # (C, 1, H, W): each channel its own image
        channels = np.moveaxis(image, -1, 0)[:, None]
        out = conv2d_layer(channels, kernel[None, None], padding=size // 2, mode=mode)[
            :, 0
        ]
        return np.moveaxis(out, 0, -1)
    raise ValueError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
