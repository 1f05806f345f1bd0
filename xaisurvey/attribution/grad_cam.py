"""Grad-CAM (Selvaraju, Cogswell, Das, Vedantam, Parikh and Batra, 2017)."""
from __future__ import annotations

import torch
from torch import nn

from ._core import TargetLike, as_target, capture_layer, check_input, model_guard, resolve_layer, select_scores, upsample_maps

__all__ = ["grad_cam"]

_WEIGHTS = ("mean", "sum")


def _check_options(weights: str, upsample: str | None, method: str) -> None:
    if weights not in _WEIGHTS:
        raise ValueError(f"{method}: weights must be 'mean' or 'sum', got {weights!r}")
    if upsample not in ("bilinear", "nearest", None):
        raise ValueError(f"{method}: upsample must be 'bilinear', 'nearest' or None, got {upsample!r}")


def _weighted_maps(activation: torch.Tensor, gradient: torch.Tensor, *, weights: str, relu: bool) -> torch.Tensor:
    """``sum_k alpha_k A^k`` at layer resolution, (N, h, w), from A and dS/dA, both (N, K, h, w)."""
    alpha = gradient.mean(dim=(2, 3)) if weights == "mean" else gradient.sum(dim=(2, 3))
    maps = torch.einsum("nk,nkhw->nhw", alpha, activation)
    return maps.clamp(min=0) if relu else maps


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
    """Grad-CAM: the layer's feature maps weighted by the average gradient of the target score.

    Paper: R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization" (ICCV 2017).

    Formula, for the layer's activations ``A`` (K maps of h x w) and target score ``y^c``::

        alpha_k^c = 1/Z sum_ij d y^c / d A^k_ij          (Z = h*w; weights="mean")
        H^c       = ReLU( sum_k alpha_k^c A^k )           (relu=True)

    then upsampled to the input size. Cost: one forward pass and one backward pass that stops
    at the layer (gradients w.r.t. the captured activation only; none for the weights).

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: class index, one index per image, or a callable ``output -> (N,)`` scores.
        layer: the module (or its dotted name, e.g. ``"layer4"``) whose output (N, K, h, w) is
            used; it must run exactly once per forward pass.
        relu: keep only the positive evidence (the paper; captum's ``LayerGradCam`` default is
            ``relu_attributions=False``).
        weights: ``"mean"`` of the gradients over positions (the paper) or their ``"sum"``
            (= Z times the mean; equals CAM's class weights on a global-average-pooling head).
        upsample: ``"bilinear"`` (``align_corners=False``; the paper), ``"nearest"`` (blocks,
            ties) or ``None`` (layer resolution (N, h, w)).

    Returns:
        (N, H, W) maps (or (N, h, w) with ``upsample=None``), not normalised; zero gradients
        give a zero map.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> grad_cam(net, torch.rand(2, 3, 8, 8), target=[0, 1], layer="1").shape
        torch.Size([2, 8, 8])
    """
    x = check_input(x, model, method="grad_cam")
    _check_options(weights, upsample, "grad_cam")
    target_ = as_target(target, x.shape[0], method="grad_cam")
    name, module = resolve_layer(model, layer, method="grad_cam")
    with model_guard(model) as handles:
        capture = capture_layer(module, name, handles)
        output = model(x)
        activation = capture.spatial("grad_cam")
        scores = select_scores(output, target_, method="grad_cam")
        gradient = None
        if scores.requires_grad:
            (gradient,) = torch.autograd.grad(scores.sum(), activation, allow_unused=True)
    activation = activation.detach()
    if gradient is None:  # the target does not depend on this layer
        gradient = torch.zeros_like(activation)
    maps = _weighted_maps(activation, gradient, weights=weights, relu=relu)
    return upsample_maps(maps, tuple(x.shape[-2:]), upsample, method="grad_cam")
