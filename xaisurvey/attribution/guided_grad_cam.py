"""Guided Grad-CAM (Selvaraju et al., 2017): Guided Backpropagation times the upsampled Grad-CAM."""
from __future__ import annotations

import torch
from torch import nn

from ._core import TargetLike, as_target, capture_layer, check_input, model_guard, resolve_layer, select_scores, upsample_maps
from .grad_cam import _check_options, _weighted_maps
from .guided_backprop import relu_backward_rule
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
    """Guided Grad-CAM: pixel-sharp Guided Backpropagation masked by the class-discriminative Grad-CAM.

    Paper: R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization" (ICCV 2017), section 3.

    Formula: ``G^c = GuidedBackprop^c(x) * up(H^c)``, with ``H^c`` the Grad-CAM map of ``layer``
    (see :func:`~xaisurvey.attribution.grad_cam`) upsampled to the input size and
    broadcast over the colour channels.

    One forward pass: the guided rule is installed for it while the layer's activation is
    captured. The Grad-CAM weights need the *plain* gradient at the layer; when no ReLU runs
    after the layer (ResNet's ``layer4``, MobileNet's last stage) one backward pass gives both
    gradients, otherwise the ReLUs after the layer backpropagate plainly for the layer gradient
    and guidedly for the input gradient (a second backward through the head only).

    Args:
        model, x, target, layer, relu, weights: as in ``grad_cam``.
        upsample: ``"bilinear"`` (the paper) or ``"nearest"`` (captum's ``GuidedGradCam`` default).
        reduce: ``None`` keeps (N, C, H, W); a ``reduce_channels`` name gives (N, H, W).

    Returns:
        (N, C, H, W) signed attributions (or (N, H, W) with ``reduce``), not normalised.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> guided_grad_cam(net, torch.rand(2, 3, 8, 8), target=1, layer="1").shape
        torch.Size([2, 3, 8, 8])
    """
    x = check_input(x, model, method="guided_grad_cam")
    _check_options(weights, upsample, "guided_grad_cam")
    if upsample is None:
        raise ValueError("guided_grad_cam: upsample must be 'bilinear' or 'nearest' (the map multiplies the input-size gradient)")
    target_ = as_target(target, x.shape[0], method="guided_grad_cam")
    name, module = resolve_layer(model, layer, method="guided_grad_cam")
    with model_guard(model) as handles:
        inputs = x.detach().requires_grad_(True)
        capture = capture_layer(module, name, handles)
        with relu_backward_rule("guided", method="guided_grad_cam") as state:
            capture.on_capture.append(state.start_downstream)
            output = model(inputs)
        activation = capture.spatial("guided_grad_cam")
        scores = select_scores(output, target_, method="guided_grad_cam")
        grad_x = grad_a = None
        if scores.requires_grad:
            total = scores.sum()
            if state.downstream_relus == 0:  # nothing to switch: one backward gives both gradients
                grad_x, grad_a = torch.autograd.grad(total, (inputs, activation), allow_unused=True)
            else:
                assert state.downstream is not None
                state.downstream.rule = "gradient"
                (grad_a,) = torch.autograd.grad(total, activation, retain_graph=True, allow_unused=True)
                state.downstream.rule = "guided"
                (grad_x,) = torch.autograd.grad(total, inputs, allow_unused=True)
    activation = activation.detach()
    grad_x = torch.zeros_like(inputs) if grad_x is None else grad_x
    grad_a = torch.zeros_like(activation) if grad_a is None else grad_a
    maps = _weighted_maps(activation, grad_a, weights=weights, relu=relu)
    maps = upsample_maps(maps, tuple(x.shape[-2:]), upsample, method="guided_grad_cam")
    result = grad_x * maps.unsqueeze(1)
    return result if reduce is None else reduce_channels(result, reduce)
