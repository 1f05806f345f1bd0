"""Class activation mapping, CAM (Zhou, Khosla, Lapedriza, Oliva and Torralba, 2016)."""

from __future__ import annotations

import torch
from torch import nn

from ._core import (
    TargetLike,
    as_target,
    check_bool,
    check_channels,
    check_input,
    model_guard,
    resolve_layer,
    upsample_maps,
)

__all__ = ["cam"]


def _last(model: nn.Module, kind: type) -> tuple[str, nn.Module] | None:
    found = None
    for name, module in model.named_modules():
        if isinstance(module, kind):
            found = (name, module)
    return found


def cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str | None = None,
    fc: nn.Linear | str | None = None,
    relu: bool = False,
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """CAM: the last feature maps weighted by the classifier's weights for the target.

    Paper: B. Zhou et al., "Learning Deep Features for Discriminative Localization"
    (CVPR 2016).

    It needs a network whose head is global average pooling (GAP) followed directly by
    one linear layer, ``y^c = sum_k w^c_k * mean_ij f_k(i, j) + b^c``. The class
    activation map is

        M_c(i, j) = sum_k w^c_k f_k(i, j)

    (no bias, no ReLU in the paper), upsampled to the input size. One forward pass, no
    gradients.

    The head is *checked*, not assumed: during the forward pass the input of ``fc`` must
    equal the spatial mean of the feature maps; otherwise a ``ValueError`` says the
    model has no GAP head (use :func:`~xaisurvey.attribution.grad_cam`, which
    generalises CAM).

    Args:
        model: the network; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: class index or one index per image (callables are not meaningful for
            CAM).
        layer: the module (or dotted name) producing the feature maps f (N, K, h, w);
            default: the input of the model's last ``nn.AdaptiveAvgPool2d``.
        fc: the linear classifier (or its dotted name); default: the model's last
            ``nn.Linear``.
        relu: clamp negative evidence to zero (off in the paper; Grad-CAM's default is
            on).
        upsample: ``"bilinear"``, ``"nearest"`` or ``None`` (layer resolution).

    Returns:
        (N, H, W) maps (or (N, h, w) with ``upsample=None``), not normalised.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1),
        ...     torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 2),
        ... )
        >>> cam(net, torch.rand(2, 3, 8, 8), target=1).shape
        torch.Size([2, 8, 8])
    """
    x = check_input(x, model, method="cam")
    check_bool(relu, "relu", "cam")
    if callable(target) and not isinstance(target, torch.Tensor):
        raise TypeError(
            "cam: target must be class indices (CAM uses the classifier's weights of a"
            " class), not a callable"
        )
    if upsample not in ("bilinear", "nearest", None):
        raise ValueError(
            f"cam: upsample must be 'bilinear', 'nearest' or None, got {upsample!r}"
        )
    target_ = as_target(target, x.shape[0], method="cam")

    if fc is None:
        found = _last(model, nn.Linear)
        if found is None:
            raise ValueError(
                "cam: the model has no nn.Linear classifier; CAM needs a GAP head"
                " followed by one linear layer"
            )
        fc_module = found[1]
    else:
        fc_module = resolve_layer(model, fc, method="cam")[1]
        if not isinstance(fc_module, nn.Linear):
            raise ValueError(
                f"cam: fc must be an nn.Linear, got {type(fc_module).__name__}"
            )
    if layer is None:
        found = _last(model, nn.AdaptiveAvgPool2d)
        if found is None:
            raise ValueError(
                "cam: the model has no nn.AdaptiveAvgPool2d, so it has no"
                " global-average-pooling head that CAM needs; pass layer= if the"
                " pooling happens in forward(), or use grad_cam"
            )
        feature_module, take_input = found[1], True
        feature_name = f"the input of {found[0]!r}"
    else:
        feature_name, feature_module = resolve_layer(model, layer, method="cam")
        feature_name, take_input = repr(feature_name), False

    seen: dict[str, torch.Tensor] = {}
    with model_guard(model, needs_grad=False, method="cam") as handles, torch.no_grad():
        check_channels(model, x.shape[1], handles, method="cam")
        if take_input:
            handles.append(
                feature_module.register_forward_pre_hook(
                    lambda m, inp: seen.__setitem__("f", inp[0].clone())
                )
            )
        else:
            # A clone: an in-place op after the layer (ReLU(inplace=True)) must not
            # change it.
            handles.append(
                feature_module.register_forward_hook(
                    lambda m, inp, out: seen.__setitem__("f", out.clone())
                )
            )
        handles.append(
            fc_module.register_forward_pre_hook(
                lambda m, inp: seen.__setitem__("fc_in", inp[0].clone())
            )
        )
        model(x)
    features, fc_in = seen.get("f"), seen.get("fc_in")
    if features is None or fc_in is None:
        raise ValueError(
            f"cam: the feature layer ({feature_name}) or the classifier did not run"
            " during the forward pass"
        )
    if features.dim() != 4:
        raise ValueError(
            f"cam: the feature maps ({feature_name}) have shape"
            f" {tuple(features.shape)}, not a spatial map (N, K, h, w)"
        )
    pooled = features.mean(dim=(2, 3))
    tol = 1e-4 * max(1.0, float(pooled.abs().max()))
    if fc_in.shape != pooled.shape or not torch.allclose(
        fc_in, pooled, rtol=1e-4, atol=tol
    ):
        raise ValueError(
            f"cam: the classifier's input (shape {tuple(fc_in.shape)}) is not the"
            f" global average of the feature maps ({feature_name}, shape"
            f" {tuple(features.shape)}): the model has no GAP head directly before its"
            " linear classifier, which CAM needs; use grad_cam instead"
        )
    assert target_.indices is not None
    if int(target_.indices.max()) >= fc_module.out_features:
        raise ValueError(
            f"cam: target {int(target_.indices.max())} is out of range for a classifier"
            f" with {fc_module.out_features} outputs"
        )
    # (N, K)
    class_weights = fc_module.weight.detach()[
        target_.indices.to(fc_module.weight.device)
    ]
    maps = torch.einsum("nk,nkhw->nhw", class_weights.to(features.dtype), features)
    if relu:
        maps = maps.clamp(min=0)
    return upsample_maps(maps, tuple(x.shape[-2:]), upsample, method="cam")
