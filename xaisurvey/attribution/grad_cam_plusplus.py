"""Grad-CAM++ (Chattopadhay, Sarkar, Howlader and Balasubramanian, 2018)."""

from __future__ import annotations

import torch
from torch import nn

from ._cam_rules import gradient_cam
from ._core import TargetLike

__all__ = ["grad_cam_plusplus", "grad_cam_plusplus_weights"]


def grad_cam_plusplus_weights(
    activation: torch.Tensor, gradient: torch.Tensor
) -> torch.Tensor:
    """Grad-CAM++'s channel weights (N, K) from ``A`` and ``g = dS/dA`` (N, K, h, w).

    ``alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)`` (a zero denominator is
    replaced by 1, as in the authors' code; the numerator is then 0 too unless
    ``2 + g_ij sum_ab A_ab = 0``), and ``w_k = sum_ij alpha_ij ReLU(g_ij)``.
    """
    g2 = gradient * gradient
    total = activation.sum(dim=(2, 3), keepdim=True)
    denominator = 2 * g2 + total * g2 * gradient
    denominator = torch.where(
        denominator == 0, torch.ones_like(denominator), denominator
    )
    alpha = g2 / denominator
    return (alpha * gradient.clamp(min=0)).sum(dim=(2, 3))


def grad_cam_plusplus(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    relu: bool = True,
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """Grad-CAM++: channel weights that sum the positive gradients, each position
    weighted by alpha.

    Paper: A. Chattopadhay, A. Sarkar, P. Howlader and V. N. Balasubramanian,
    "Grad-CAM++: Generalized Gradient-Based Visual Explanations for Deep Convolutional
    Networks" (WACV 2018).

    Formula (the paper's closed form, its eq. 19, for the exponential score
    ``Y = exp(S)``)::

        g_ij     = dS / dA^k_ij             (S: the target score, e.g. a logit)
        alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A^k_ab g_ij^3)
        w_k      = sum_ij alpha_ij ReLU(g_ij)
        H        = ReLU( sum_k w_k A^k )

    The paper explains ``Y = exp(S)`` and assumes ``S`` is piecewise linear in ``A``
    (ReLU networks), so the second and third derivatives of ``Y`` are ``exp(S) g^2`` and
    ``exp(S) g^3``: the factor ``exp(S)`` cancels in alpha and multiplies every ``w_k``
    of an image by the same positive number. We leave it out (in float32 it overflows
    for ``S > 88``): the map is the paper's divided by ``exp(S)``, identical after any
    per-map normalisation. Cost: one forward pass and one backward pass that stops at
    the layer, as Grad-CAM.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: a class index, one index per image (list, tensor or NumPy array), or a
            callable ``output -> (N,)`` scores.
        layer: the module (or its dotted name) whose output (N, K, h, w) is used; it
            must run once per forward pass.
        relu: apply the final ReLU (the paper).
        upsample: ``"bilinear"`` (``align_corners=False``), ``"nearest"`` or ``None``
            (layer resolution).

    Returns:
        (N, H, W) maps (or (N, h, w) with ``upsample=None``), not normalised; zero
        gradients give zeros.

    Raises:
        ValueError: an option is invalid, the layer is not spatial, runs more than once,
            or the score does not depend on it.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> grad_cam_plusplus(
        ...     net, torch.rand(2, 3, 8, 8), target=[0, 1], layer="1"
        ... ).shape
        torch.Size([2, 8, 8])
    """
    return gradient_cam(
        model,
        x,
        target,
        layer,
        grad_cam_plusplus_weights,
        relu=relu,
        upsample=upsample,
        method="grad_cam_plusplus",
    )
