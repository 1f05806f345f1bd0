"""Ablation-CAM (Desai and Ramaswamy, 2020)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ._cam import layer_pass, weighted_map
from ._cam_rules import prepare
from ._core import Target, TargetLike, check_positive_int, model_guard, select_scores

__all__ = ["ablation_cam", "AblationCAMWarning"]


class AblationCAMWarning(UserWarning):
    """The target score is not positive: the division by it is replaced
    (see ablation_cam)."""


def ablation_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    batch_size: int = 32,
    relu: bool = True,
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """Ablation-CAM: each feature map weighted by the score's relative drop when it is
    set to zero.

    Paper: S. Desai and H. G. Ramaswamy, "Ablation-CAM: Visual Explanations for Deep
    Convolutional Network via Gradient-free Localization" (WACV 2020).

    Formula::

        y_k  = the target score with channel k of the layer's output set to 0
        w_k  = (y - y_k) / y
        H    = ReLU( sum_k w_k A^k )

    Dividing by ``y`` scales all weights of an image by one number: for ``y > 0`` it
    changes no normalised map. For ``y <= 0`` it would flip the map's sign (or divide by
    zero), so for those images the weights are the plain drops ``y - y_k`` and an
    :class:`AblationCAMWarning` says so. (pytorch-grad-cam divides regardless, and
    replaces the ablated values by -1e7 instead of 0 when the layer's output has no
    zero.)

    Cost: one forward pass for the activations, then one forward pass (no gradients) per
    image and channel, in batches of ``batch_size`` copies of the image, each with one
    channel of the layer replaced by zeros (a forward hook substitutes the layer's
    output). The layers before the chosen one are recomputed in each pass: a generic
    model cannot be restarted in the middle.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: a class index, one index per image (list, tensor or NumPy array), or a
            callable ``output -> (N,)`` scores.
        layer: the module (or its dotted name) whose output (N, K, h, w) is ablated.
        batch_size: ablated copies per forward pass; it bounds the extra memory.
        relu: apply the final ReLU (the paper).
        upsample: ``"bilinear"``, ``"nearest"`` or ``None`` (layer resolution).

    Returns:
        (N, H, W) maps (or (N, h, w)), not normalised.

    Raises:
        ValueError: an option is invalid, the layer is not spatial or runs more than
            once.

    Warns:
        AblationCAMWarning: an image's target score is <= 0.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> ablation_cam(net, torch.rand(2, 3, 8, 8), target=[0, 1], layer="1").shape
        torch.Size([2, 8, 8])
    """
    method = "ablation_cam"
    x, target_, name, module = prepare(
        model, x, target, layer, relu=relu, upsample=upsample, method=method
    )
    batch_size = check_positive_int(batch_size, "batch_size", method)
    recorded = layer_pass(
        model, x, target_, module, name, method=method, gradient=False
    )
    activation, scores = recorded.activation, recorded.scores
    n, k = activation.shape[:2]
    ablated = torch.empty(n * k, dtype=x.dtype, device=x.device)
    state: dict[str, torch.Tensor] = {}

    def substitute(_module: nn.Module, _inputs: tuple, _output: object) -> torch.Tensor:
        return state["output"]

    with (
        model_guard(model, needs_grad=False, method=method) as handles,
        torch.no_grad(),
    ):
        handles.append(module.register_forward_hook(substitute))
        for start in range(0, n * k, batch_size):
            rows = torch.arange(start, min(start + batch_size, n * k), device=x.device)
            image, channel = rows // k, rows % k
            output = activation[image].clone()
            output[torch.arange(rows.numel(), device=x.device), channel] = 0
            state["output"] = output
            index = None if target_.indices is None else target_.indices[image.cpu()]
            chunk_target = target_ if index is None else Target(index)
            out = model(x[image])
            ablated[rows] = select_scores(
                out, chunk_target, method=method, n=rows.numel()
            )
            del output
        state.clear()
    drop = scores.view(n, 1) - ablated.view(n, k)
    positive = scores > 0
    if not bool(positive.all()):
        warnings.warn(
            f"{method}: the target score is <= 0 for {int((~positive).sum())} image(s);"
            " their weights are the plain drops y - y_k (dividing by y would flip or"
            " break the map)",
            AblationCAMWarning,
            stacklevel=2,
        )
    divisor = torch.where(positive, scores, torch.ones_like(scores)).view(n, 1)
    weights = torch.where(positive.view(n, 1), drop / divisor, drop)
    return weighted_map(
        activation,
        weights,
        relu=relu,
        size=tuple(x.shape[-2:]),
        upsample=upsample,
        method=method,
    )
