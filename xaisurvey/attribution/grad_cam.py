"""Grad-CAM (Selvaraju, Cogswell, Das, Vedantam, Parikh and Batra, 2017)."""

from __future__ import annotations

import torch
from torch import nn

from ._cam import layer_pass, weighted_map
from ._core import (
    TargetLike,
    as_target,
    check_bool,
    check_choice,
    check_input,
    resolve_layer,
)

__all__ = ["grad_cam", "grad_cam_weights"]


def grad_cam_weights(gradient: torch.Tensor, weights: str = "mean") -> torch.Tensor:
    """Grad-CAM's channel weights ``alpha_k``, (N, K), from ``dS/dA`` (N, K, h, w)."""
    return gradient.mean(dim=(2, 3)) if weights == "mean" else gradient.sum(dim=(2, 3))


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    relu: bool = True,
    weights: str = "mean",
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """Grad-CAM: the layer's feature maps weighted by the target score's mean gradient.

    Paper: R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization" (ICCV 2017).

    Formula, for the layer's activations ``A`` (K maps of h x w) and target score
    ``y^c``::

        alpha_k^c = 1/Z sum_ij d y^c / d A^k_ij          (Z = h*w; weights="mean")
        H^c       = ReLU( sum_k alpha_k^c A^k )           (relu=True)

    then upsampled to the input size. Cost: one forward pass and one backward pass that
    stops at the layer (gradients w.r.t. the captured activation only; none for the
    weights).

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: class index, one index per image, or a callable ``output -> (N,)``
            scores.
        layer: the module (or its dotted name, e.g. ``"layer4"``) whose output
            (N, K, h, w) is used; it must run exactly once per forward pass.
        relu: keep only the positive evidence (the paper; captum's ``LayerGradCam``
            default is ``relu_attributions=False``).
        weights: ``"mean"`` of the gradients over positions (the paper) or their
            ``"sum"`` (= Z times the mean; equals CAM's class weights on a
            global-average-pooling head).
        upsample: ``"bilinear"`` (``align_corners=False``; the paper), ``"nearest"``
            (blocks, ties) or ``None`` (layer resolution (N, h, w)).

    Returns:
        (N, H, W) maps (or (N, h, w) with ``upsample=None``), not normalised; zero
        gradients give a zero map.

    Raises:
        ValueError: the target score does not depend on ``layer`` (no graph path), the
            layer is not spatial or runs more than once, or an option is unknown.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1),
        ...     torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 2),
        ... )
        >>> grad_cam(net, torch.rand(2, 3, 8, 8), target=[0, 1], layer="1").shape
        torch.Size([2, 8, 8])
    """
    x = check_input(x, model, method="grad_cam")
    check_bool(relu, "relu", "grad_cam")
    check_choice(weights, ("mean", "sum"), "weights", "grad_cam")
    check_choice(upsample, ("bilinear", "nearest", None), "upsample", "grad_cam")
    target_ = as_target(target, x.shape[0], method="grad_cam")
    name, module = resolve_layer(model, layer, method="grad_cam")
    recorded = layer_pass(model, x, target_, module, name, method="grad_cam")
    alpha = grad_cam_weights(recorded.gradient, weights)
    return weighted_map(
        recorded.activation,
        alpha,
        relu=relu,
        size=tuple(x.shape[-2:]),
        upsample=upsample,
        method="grad_cam",
    )
