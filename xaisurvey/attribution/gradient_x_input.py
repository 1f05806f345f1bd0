"""Gradient x Input (Shrikumar et al., 2016; named by Ancona et al., 2018)."""

from __future__ import annotations

import torch
from torch import nn

from ._core import TargetLike, as_target, check_input, input_gradient
from .normalize import reduce_channels

__all__ = ["gradient_x_input"]


def gradient_x_input(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    reduce: str | None = None,
) -> torch.Tensor:
    """Gradient x Input: the input times the gradient of the score, element by element.

    Paper: A. Shrikumar, P. Greenside, A. Shcherbina and A. Kundaje, "Not Just a Black
    Box: Learning Important Features Through Propagating Activation Differences" (arXiv
    1605.01713, 2016); analysed as "Gradient * Input" by M. Ancona, E. Ceolini, C.
    Oztireli and M. Gross, "Towards better understanding of gradient-based attribution
    methods for Deep Neural Networks" (ICLR 2018).

    Formula: ``A_i(x) = x_i * dS_c(x) / dx_i``, the first-order Taylor term of the score
    around the black image 0. For a linear model ``S(x) = w.x + b`` it is ``w_i x_i``,
    which equals Integrated Gradients from the black baseline; for ReLU networks without
    biases it sums to ``S(x)``. Same as captum's ``InputXGradient``.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W) in [0, 1].
        target: class index, one per image, or a callable ``output -> (N,)`` scores.
        reduce: ``None`` keeps (N, C, H, W); a ``reduce_channels`` name gives (N, H, W).

    Returns:
        Signed attributions (N, C, H, W) (or (N, H, W) with ``reduce``), not normalised;
        a black image gives zeros.

    Raises:
        ValueError: the target score does not depend on ``x`` at all (no graph path).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
        >>> x = torch.rand(2, 3, 4, 4)
        >>> a = gradient_x_input(net, x, 1)
        >>> torch.allclose(a, x * net[1].weight[1].view(3, 4, 4))
        True
    """
    x = check_input(x, model, method="gradient_x_input")
    target_ = as_target(target, x.shape[0], method="gradient_x_input")
    grad = input_gradient(model, x, target_, method="gradient_x_input")
    result = grad * x  # not in place: the gradient may be an expanded view
    return result if reduce is None else reduce_channels(result, reduce)
