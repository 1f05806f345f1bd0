"""Gradient saliency (Simonyan, Vedaldi and Zisserman, 2013)."""

from __future__ import annotations

import torch
from torch import nn

from ._core import TargetLike, as_target, check_bool, check_input, input_gradient
from .normalize import reduce_channels

__all__ = ["saliency"]


def saliency(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    absolute: bool = True,
    reduce: str | None = None,
) -> torch.Tensor:
    """Gradient saliency: how much each input pixel changes the target score, to first
    order.

    Paper: K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks:
    Visualising Image Classification Models and Saliency Maps" (2013).

    Formula: ``w = d S_c(x) / d x`` evaluated at the image; the paper's map is
    ``M_ij = max_c |w_{c,i,j}|`` (``absolute=True, reduce="max_abs"``).

    Args:
        model: any ``nn.Module`` mapping (N, C, H, W) to (N, K) (or to anything a
            callable target reduces to one score per image). It is run in eval mode and
            left unchanged.
        x: float images (N, C, H, W); the model carries its own normalisation.
        target: class index for all images, one index per image, or a callable
            ``output -> (N,)`` scores.
        absolute: return ``|gradient|`` (the paper, captum's ``Saliency`` default) or
            the signed gradient (``False``).
        reduce: ``None`` keeps the channels, (N, C, H, W); a reduction name from
            :func:`xaisurvey.attribution.reduce_channels` (``"max_abs"`` is the
            paper's) returns (N, H, W).

    Returns:
        (N, C, H, W), or (N, H, W) with ``reduce``; on the model's device and dtype; not
        normalised. Zero gradients give a zero map.

    Raises:
        ValueError: the target score does not depend on ``x`` at all (no graph path).
        RuntimeError: called inside ``torch.inference_mode()``.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 2, 3),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ... )
        >>> saliency(net, torch.rand(4, 3, 8, 8), target=1, reduce="max_abs").shape
        torch.Size([4, 8, 8])
    """
    x = check_input(x, model, method="saliency")
    check_bool(absolute, "absolute", "saliency")
    grad = input_gradient(
        model, x, as_target(target, x.shape[0], method="saliency"), method="saliency"
    )
    if absolute:
        grad = grad.abs()
    return grad if reduce is None else reduce_channels(grad, reduce)
