"""Gradient saliency (Simonyan, Vedaldi and Zisserman, 2013)."""
from __future__ import annotations

import torch
from torch import nn

from ._core import TargetLike, as_target, check_input, model_guard, select_scores
from .normalize import reduce_channels

__all__ = ["saliency"]


def _input_gradients(model: nn.Module, x: torch.Tensor, target: TargetLike, *, method: str) -> torch.Tensor:
    """d score_n / d x_n for every image n, shape (N, C, H, W); one forward and one backward.

    ``x`` must already be checked; the caller holds no guard (this function takes its own).
    """
    target_ = as_target(target, x.shape[0], method=method)
    with model_guard(model):
        inputs = x.detach().requires_grad_(True)
        scores = select_scores(model(inputs), target_, method=method)
        if not scores.requires_grad:  # the output does not depend on the input at all
            return torch.zeros_like(inputs)
        (grad,) = torch.autograd.grad(scores.sum(), inputs, allow_unused=True)
    return torch.zeros_like(inputs) if grad is None else grad


def saliency(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    absolute: bool = True,
    reduce: str | None = None,
) -> torch.Tensor:
    """Gradient saliency: how much each input pixel changes the target score, to first order.

    Paper: K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks:
    Visualising Image Classification Models and Saliency Maps" (2013).

    Formula: ``w = d S_c(x) / d x`` evaluated at the image; the paper's map is
    ``M_ij = max_c |w_{c,i,j}|`` (``absolute=True, reduce="max_abs"``).

    Args:
        model: any ``nn.Module`` mapping (N, C, H, W) to (N, K) (or to anything a callable
            target reduces to one score per image). It is run in eval mode and left unchanged.
        x: float images (N, C, H, W); the model carries its own normalisation.
        target: class index for all images, one index per image, or a callable
            ``output -> (N,)`` scores.
        absolute: return ``|gradient|`` (the paper, captum's ``Saliency`` default) or the signed
            gradient (``False``).
        reduce: ``None`` keeps the channels, (N, C, H, W); a reduction name from
            :func:`xaisurvey.attribution.reduce_channels` (``"max_abs"`` is the
            paper's) returns (N, H, W).

    Returns:
        (N, C, H, W), or (N, H, W) with ``reduce``; on the model's device and dtype; not
        normalised. Zero gradients give a zero map.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> saliency(net, torch.rand(4, 3, 8, 8), target=1, reduce="max_abs").shape
        torch.Size([4, 8, 8])
    """
    x = check_input(x, model, method="saliency")
    grad = _input_gradients(model, x, target, method="saliency")
    if absolute:
        grad = grad.abs()
    return grad if reduce is None else reduce_channels(grad, reduce)
