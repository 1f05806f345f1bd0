"""Occlusion (Zeiler and Fergus, 2014)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._core import (
    TargetLike,
    as_target,
    check_input,
    check_positive_int,
    warn_zero_maps,
)
from ._perturb import check_baseline, masked_scores

__all__ = ["occlusion", "occlusion_windows"]


def _pair(
    value: object, name: str, method: str, size: tuple[int, int] | None = None
) -> tuple[int, int]:
    if isinstance(value, float) and not isinstance(value, bool) and size is not None:
        # A fraction of the image: the same relative window on 28 and on 224 px images.
        if not 0 < value <= 1:
            raise ValueError(
                f"{method}: {name} given as a fraction of the image must be in (0, 1],"
                f" got {value!r}"
            )
        return max(1, round(value * size[0])), max(1, round(value * size[1]))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (
            check_positive_int(value[0], name, method),
            check_positive_int(value[1], name, method),
        )
    if isinstance(value, (tuple, list)):
        raise ValueError(
            f"{method}: {name} must be an int or a pair (height, width), got {value!r}"
        )
    size = check_positive_int(value, name, method)
    return size, size


def _starts(size: int, window: int, stride: int) -> list[int]:
    """Window starts on one axis: 0, s, 2s, ... until the windows cover the axis
    (captum's rule)."""
    return [k * stride for k in range(math.ceil((size - window) / stride) + 1)]


def occlusion_windows(
    size: tuple[int, int], window: int | tuple[int, int], stride: int | tuple[int, int]
) -> int:
    """The number of window positions on an image of ``size`` = (H, W)
    (copies per image)."""
    (wh, ww), (sh, sw) = _pair(window, "window", "occlusion"), _pair(
        stride, "stride", "occlusion"
    )
    return len(_starts(size[0], wh, sh)) * len(_starts(size[1], ww, sw))


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    window: int | tuple[int, int] = 16,
    stride: int | tuple[int, int] = 8,
    baseline: float | torch.Tensor = 0.5,
    batch_size: int = 64,
) -> torch.Tensor:
    """Occlusion: the drop of the target score when a square of the image is covered.

    Paper: M. D. Zeiler and R. Fergus, "Visualizing and understanding convolutional
    networks", ECCV 2014 (section 4.2: a grey square slid over the image).

    Formula: for every window position ``k`` (a ``window`` rectangle with its top-left
    corner at multiples of ``stride``), ``d_k = S(x) - S(x_k)`` where ``x_k`` is ``x``
    with the window set to the baseline in every channel. The attribution of a pixel is
    the *mean* of ``d_k`` over the windows that cover it, ``A(p) = sum_{k: p in W_k} d_k
    / #{k: p in W_k}``. This is captum's ``Occlusion`` convention (it sums ``d_k`` into
    the covered pixels and divides by the count); the paper shows ``S(x_k)`` at window
    resolution instead. Windows start at 0, ``s``, 2``s``, ... until one reaches the
    last row (column); a window that would cross the border is cut there
    (captum's rule), so every pixel is covered when ``stride <= window``. Positive
    values: covering the pixel lowers the score.

    Args:
        model: the network; only its outputs are used (no gradients).
        x: float batch (N, C, H, W).
        target: an int, one int per image, or a callable on the output (applied to
            chunks of perturbed copies; it must score each row on its own).
        window: window size, an int or (height, width), at most the image size; or a
            float in (0, 1], a fraction of the image's height and width (rounded to
            whole pixels).
        stride: step between window positions, an int or (height, width), at most
            ``window``; or a float in (0, 1], a fraction of the image as for ``window``.
        baseline: what a covered pixel becomes: a number (0.5, the default, is the
            paper's grey on images in [0, 1]) or a tensor that broadcasts to
            (N, C, H, W).
        batch_size: perturbed copies per forward pass; it bounds the extra memory (one
            chunk of copies exists at a time). The result does not depend on it.

    Returns:
        (N, H, W) maps on the model's device and dtype. The cost is ``K + 1`` forward
        passes of one image each (K window positions, see
        :func:`~xaisurvey.attribution.occlusion.occlusion_windows`), run in chunks.

    Raises:
        ValueError: a window larger than the image, a stride larger than the window, a
            bad baseline or batch size.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(
        ...     nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        ... )
        >>> occlusion(net, torch.rand(2, 3, 8, 8), target=0, window=4, stride=2).shape
        torch.Size([2, 8, 8])
    """
    method = "occlusion"
    x = check_input(x, model, method=method)
    n, _, h, w = x.shape
    wh, ww = _pair(window, "window", method, (h, w))
    sh, sw = _pair(stride, "stride", method, (h, w))
    if wh > h or ww > w:
        raise ValueError(
            f"{method}: window {(wh, ww)} is larger than the image {(h, w)}"
        )
    if (sh > wh and wh < h) or (sw > ww and ww < w):
        raise ValueError(
            f"{method}: stride {(sh, sw)} must not exceed window {(wh, ww)} "
            "(pixels would be skipped)"
        )
    batch_size = check_positive_int(batch_size, "batch_size", method)
    base = check_baseline(baseline, x, method)
    target_ = as_target(target, n, method=method)
    tops = torch.tensor(_starts(h, wh, sh), device=x.device)
    lefts = torch.tensor(_starts(w, ww, sw), device=x.device)
    # window k, row-major
    top, left = tops.repeat_interleave(len(lefts)), lefts.repeat(len(tops))
    k = top.numel()
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)

    def windows(index: torch.Tensor) -> torch.Tensor:
        """Window masks (B, H, W), True inside window ``index`` (an index K means no
        window)."""
        t, lft = top[index.clamp(max=k - 1)], left[index.clamp(max=k - 1)]
        inside_y = (ys[None, :] >= t[:, None]) & (ys[None, :] < t[:, None] + wh)
        inside_x = (xs[None, :] >= lft[:, None]) & (xs[None, :] < lft[:, None] + ww)
        return inside_y[:, :, None] & inside_x[:, None, :] & (index < k)[:, None, None]

    def mask_rows(_images: torch.Tensor, copies: torch.Tensor) -> torch.Tensor:
        # Copy K of every image is the unoccluded original (its score is S(x)).
        return (~windows(copies)).to(x.dtype).unsqueeze(1)

    scores = masked_scores(
        model, x, base, target_, k + 1, mask_rows, batch_size=batch_size, method=method
    )
    drops = scores[:, -1:] - scores[:, :-1]  # (N, K)
    total = torch.zeros((n, h * w), dtype=x.dtype, device=x.device)
    count = torch.zeros(h * w, dtype=x.dtype, device=x.device)
    # the per-pixel sums, bounded by batch_size windows
    for start in range(0, k, batch_size):
        index = torch.arange(start, min(start + batch_size, k), device=x.device)
        covered = windows(index).reshape(len(index), -1).to(x.dtype)
        total += drops[:, index] @ covered
        count += covered.sum(dim=0)
    return warn_zero_maps(
        (total / count).view(n, h, w),
        method=method,
        why="the target score did not change when any window was occluded",
    )
