"""HiResCAM (Draelos and Carin, 2020)."""

from __future__ import annotations

import torch
from torch import nn

from ._cam_rules import gradient_cam
from ._core import TargetLike

__all__ = ["hires_cam", "hires_cam_weights"]


def hires_cam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """HiResCAM's position-wise weights (N, K, h, w): the gradient itself."""
    del activation
    return gradient


def hires_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    relu: bool = True,
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """HiResCAM: the element-wise product of gradient and activation, summed over
    channels.

    Paper: R. L. Draelos and L. Carin, "Use HiResCAM instead of Grad-CAM for faithful
    explanations of convolutional neural networks" (arXiv:2011.08891, 2020).

    Formula::

        H_ij = ReLU( sum_k dS / dA^k_ij * A^k_ij )

    Grad-CAM averages the gradient over positions before multiplying; HiResCAM does not.
    The paper's argument: when the layer is followed by a flatten and one linear layer,
    ``S - b = sum_kij dS/dA_kij A_kij``, so HiResCAM's map (without ReLU) sums exactly
    to the score minus the bias and shows which positions the score used, whereas the
    averaged gradient can give weight to positions whose own gradient is zero. On a
    global-average-pooling head the gradient is constant per channel and HiResCAM equals
    Grad-CAM. ``relu=False`` returns the signed sum (the paper's map; pytorch-grad-cam
    applies the ReLU). Cost: one forward pass and one backward pass that stops at the
    layer.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: a class index, one index per image (list, tensor or NumPy array), or a
            callable ``output -> (N,)`` scores.
        layer: the module (or its dotted name) whose output (N, K, h, w) is used.
        relu: apply a final ReLU (keeps the positions that raise the score).
        upsample: ``"bilinear"``, ``"nearest"`` or ``None`` (layer resolution).

    Returns:
        (N, H, W) maps (or (N, h, w)), not normalised.

    Raises:
        ValueError: an option is invalid, the layer is not spatial, runs more than once,
            or the score does not depend on it.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1),
        ...     torch.nn.ReLU(),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4 * 8 * 8, 2),
        ... )
        >>> hires_cam(net, torch.rand(2, 3, 8, 8), target=0, layer="1").shape
        torch.Size([2, 8, 8])
    """
    return gradient_cam(
        model,
        x,
        target,
        layer,
        hires_cam_weights,
        relu=relu,
        upsample=upsample,
        method="hires_cam",
    )
