"""XGrad-CAM (Fu, Hu, Dong, Guo, Gao and Li, 2020)."""

from __future__ import annotations

import torch
from torch import nn

from ._cam_rules import gradient_cam, safe_divide
from ._core import TargetLike

__all__ = ["xgrad_cam", "xgrad_cam_weights"]


def xgrad_cam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """XGrad-CAM's weights (N, K): ``sum_ij A_ij dS/dA_ij / sum_ab A_ab``; 0 if A=0."""
    numerator = (activation * gradient).sum(dim=(2, 3))
    return safe_divide(numerator, activation.sum(dim=(2, 3)))


def xgrad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    relu: bool = True,
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """XGrad-CAM: gradients averaged with the activation as weight, from two axioms.

    Paper: R. Fu, Q. Hu, X. Dong, Y. Guo, Y. Gao and B. Li, "Axiom-based Grad-CAM:
    Towards Accurate Visualization and Explanation of CNNs" (BMVC 2020).

    Formula::

        w_k = sum_ij ( A^k_ij / sum_ab A^k_ab ) * dS / dA^k_ij
        H   = ReLU( sum_k w_k A^k )

    The weights are the ones that satisfy the paper's *sensitivity* and *conservation*
    axioms as closely as possible: for a layer after which the score is linear and
    homogeneous (``S = sum_kij dS/dA_kij A_kij``, no bias), ``sum_ij H_ij`` before the
    ReLU equals ``S``. On a global-average-pooling + linear head the weights equal
    Grad-CAM's. A channel whose activations sum to zero gets weight 0 (the peers add
    1e-7 or 1e-8 to the denominator). Cost: one forward pass and one backward pass that
    stops at the layer.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: a class index, one index per image (list, tensor or NumPy array), or a
            callable ``output -> (N,)`` scores.
        layer: the module (or its dotted name) whose output (N, K, h, w) is used.
        relu: apply the final ReLU (the paper).
        upsample: ``"bilinear"``, ``"nearest"`` or ``None`` (layer resolution).

    Returns:
        (N, H, W) maps (or (N, h, w)), not normalised.

    Raises:
        ValueError: an option is invalid, the layer is not spatial, runs more than once,
            or the score does not depend on it.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> xgrad_cam(net, torch.rand(2, 3, 8, 8), target=1, layer="1").shape
        torch.Size([2, 8, 8])
    """
    return gradient_cam(
        model,
        x,
        target,
        layer,
        xgrad_cam_weights,
        relu=relu,
        upsample=upsample,
        method="xgrad_cam",
    )
