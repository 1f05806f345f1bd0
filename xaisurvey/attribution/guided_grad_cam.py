"""Guided Grad-CAM (Selvaraju et al., 2017): Guided Backpropagation times the upsampled
Grad-CAM."""

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
from .grad_cam import grad_cam_weights
from .normalize import reduce_channels

__all__ = ["guided_grad_cam"]


def guided_grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    relu: bool = True,
    weights: str = "mean",
    upsample: str = "bilinear",
    reduce: str | None = None,
) -> torch.Tensor:
    """Guided Grad-CAM: pixel-sharp Guided Backpropagation masked by the
    class-discriminative Grad-CAM.

    Paper: R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization" (ICCV 2017), section 3.

    Formula: ``G^c = GuidedBackprop^c(x) * up(H^c)``, with ``H^c`` the Grad-CAM map of
    ``layer`` (see :func:`~xaisurvey.attribution.grad_cam`) upsampled to the input size
    and broadcast over the colour channels.

    One forward pass: the guided rule is installed for it while the layer's activation
    is captured. The Grad-CAM weights need the *plain* gradient at the layer; when no
    ReLU runs after the layer (ResNet's ``layer4``, MobileNet's last stage) one backward
    pass gives both gradients, otherwise the ReLUs after the layer backpropagate plainly
    for the layer gradient and guidedly for the input gradient (a second backward
    through the head only).

    Args:
        model, x, target, layer, relu, weights: as in ``grad_cam``.
        upsample: ``"bilinear"`` (the paper) or ``"nearest"`` (captum's
            ``GuidedGradCam`` default).
        reduce: ``None`` keeps (N, C, H, W); a ``reduce_channels`` name gives (N, H, W).

    Returns:
        (N, C, H, W) signed attributions (or (N, H, W) with ``reduce``), not normalised.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1),
        ...     torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 2),
        ... )
        >>> guided_grad_cam(net, torch.rand(2, 3, 8, 8), target=1, layer="1").shape
        torch.Size([2, 3, 8, 8])
    """
    x = check_input(x, model, method="guided_grad_cam")
    check_bool(relu, "relu", "guided_grad_cam")
    check_choice(weights, ("mean", "sum"), "weights", "guided_grad_cam")
    if upsample is None:
        raise ValueError(
            "guided_grad_cam: upsample must be 'bilinear' or 'nearest' (the map"
            " multiplies the input-size gradient)"
        )
    check_choice(upsample, ("bilinear", "nearest"), "upsample", "guided_grad_cam")
    target_ = as_target(target, x.shape[0], method="guided_grad_cam")
    name, module = resolve_layer(model, layer, method="guided_grad_cam")
    recorded = layer_pass(
        model, x, target_, module, name, method="guided_grad_cam", input_rule="guided"
    )
    alpha = grad_cam_weights(recorded.gradient, weights)
    maps = weighted_map(
        recorded.activation,
        alpha,
        relu=relu,
        size=tuple(x.shape[-2:]),
        upsample=upsample,
        method="guided_grad_cam",
    )
    result = recorded.input_gradient * maps.unsqueeze(1)
    return result if reduce is None else reduce_channels(result, reduce)
