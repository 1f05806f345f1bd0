"""LayerCAM (Jiang, Zhang, Hou, Cheng and Wei, 2021)."""

from __future__ import annotations

import torch
from torch import nn

from ._cam_rules import gradient_cam
from ._core import TargetLike

__all__ = ["layer_cam", "layer_cam_weights"]


def layer_cam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """LayerCAM's position-wise weights (N, K, h, w): ``ReLU(dS/dA)``."""
    del activation
    return gradient.clamp(min=0)


def layer_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    relu: bool = True,
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """LayerCAM: every position of every map weighted by its own positive gradient.

    Paper: P.-T. Jiang, C.-B. Zhang, Q. Hou, M.-M. Cheng and Y. Wei, "LayerCAM:
    Exploring Hierarchical Class Activation Maps for Localization" (IEEE Transactions on
    Image Processing 30, 2021).

    Formula::

        H_ij = ReLU( sum_k ReLU(dS / dA^k_ij) * A^k_ij )

    The weight is not averaged over positions, so shallow layers (whose gradients vary
    from place to place) give fine-grained maps. The paper fuses the maps of several
    layers after scaling shallow ones with ``tanh(2 H / max H)``; this function returns
    one layer's map (fuse them yourself). Cost: one forward pass and one backward pass
    that stops at the layer.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: a class index, one index per image (list, tensor or NumPy array), or a
            callable ``output -> (N,)`` scores.
        layer: the module (or its dotted name) whose output (N, K, h, w) is used.
        relu: apply the final ReLU (the paper; with non-negative activations it changes
            nothing).
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
        >>> layer_cam(net, torch.rand(2, 3, 8, 8), target=0, layer="1").shape
        torch.Size([2, 8, 8])
    """
    return gradient_cam(
        model,
        x,
        target,
        layer,
        layer_cam_weights,
        relu=relu,
        upsample=upsample,
        method="layer_cam",
    )
