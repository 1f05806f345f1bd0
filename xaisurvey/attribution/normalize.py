"""Normalisation and channel reduction for attribution maps.

The methods return raw values; how a map is scaled for display or comparison is a
separate, explicit choice made with these helpers. Every helper works per image (the
first dimension) and maps a flat map (all values equal) to zeros, never to NaN.
"""

from __future__ import annotations

import torch

__all__ = ["minmax", "max_abs", "reduce_channels"]

_REDUCTIONS = ("max_abs", "sum", "sum_abs", "mean", "l2")


def _per_image(maps: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(maps, torch.Tensor) or not maps.is_floating_point():
        raise TypeError(f"{name}: maps must be a floating-point tensor")
    if maps.dim() < 2:
        raise ValueError(
            f"{name}: maps must have a batch dimension, shape (N, ...), got"
            f" {tuple(maps.shape)}"
        )
    return maps.reshape(maps.shape[0], -1)


def minmax(maps: torch.Tensor, *, eps: float = 0.0) -> torch.Tensor:
    """Scale each map to [0, 1]: ``(m - min) / (max - min + eps)``, per image.

    Args:
        maps: (N, ...) float tensor; every image is normalised over all its other
            dimensions.
        eps: added to the denominator (pytorch-grad-cam uses 1e-7 and divides by ``max``
            after subtracting ``min``; pass it to reproduce that library exactly).

    Returns:
        Tensor of the same shape; a flat map (max == min) becomes all zeros.

    Example:
        >>> import torch
        >>> minmax(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
        tensor([[0., 1.],
                [0., 0.]])
    """
    flat = _per_image(maps, "minmax")
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low + eps
    scaled = torch.where(
        span > 0,
        (flat - low) / torch.where(span > 0, span, torch.ones_like(span)),
        torch.zeros_like(flat),
    )
    return scaled.reshape(maps.shape)


def max_abs(maps: torch.Tensor) -> torch.Tensor:
    """Divide each map by its largest absolute value, per image, keeping the sign
    (range [-1, 1]).

    An all-zero map stays all zeros.

    Example:
        >>> import torch
        >>> max_abs(torch.tensor([[-2.0, 1.0], [0.0, 0.0]]))
        tensor([[-1.0000,  0.5000],
                [ 0.0000,  0.0000]])
    """
    flat = _per_image(maps, "max_abs")
    top = flat.abs().max(dim=1, keepdim=True).values
    scaled = torch.where(
        top > 0,
        flat / torch.where(top > 0, top, torch.ones_like(top)),
        torch.zeros_like(flat),
    )
    return scaled.reshape(maps.shape)


def reduce_channels(attributions: torch.Tensor, how: str = "max_abs") -> torch.Tensor:
    """Collapse input-space attributions (N, C, H, W) to one map per image (N, H, W).

    ``how``:
      * ``"max_abs"``: ``max_c |a_c|``, the saliency map of Simonyan et al. (2013);
      * ``"sum"``: ``sum_c a_c`` (captum's visualisation sums channels);
      * ``"sum_abs"``: ``sum_c |a_c|``;
      * ``"mean"``: ``mean_c a_c``;
      * ``"l2"``: ``sqrt(sum_c a_c^2)``.

    Example:
        >>> import torch
        >>> a = torch.tensor([[[[1.0]], [[-3.0]], [[2.0]]]])  # (1, 3, 1, 1)
        >>> reduce_channels(a, "max_abs").item(), reduce_channels(a, "sum").item()
        (3.0, 0.0)
    """
    if not isinstance(attributions, torch.Tensor) or attributions.dim() != 4:
        shape = (
            tuple(attributions.shape)
            if isinstance(attributions, torch.Tensor)
            else type(attributions).__name__
        )
        raise ValueError(
            f"reduce_channels: expected attributions of shape (N, C, H, W), got {shape}"
        )
    if how == "max_abs":
        return attributions.abs().amax(dim=1)
    if how == "sum":
        return attributions.sum(dim=1)
    if how == "sum_abs":
        return attributions.abs().sum(dim=1)
    if how == "mean":
        return attributions.mean(dim=1)
    if how == "l2":
        return attributions.pow(2).sum(dim=1).sqrt()
    raise ValueError(
        f"reduce_channels: how must be one of {', '.join(_REDUCTIONS)}, got {how!r}"
    )
