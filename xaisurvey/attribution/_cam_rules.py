"""The steps every gradient CAM variant shares: check the call, run one pass, apply a
weight rule.

A variant is a *channel-weight rule* ``rule(A, dS/dA) -> weights`` ((N, K) or
(N, K, h, w)); :func:`gradient_cam` checks the arguments, runs
:func:`~xaisurvey.attribution._cam.layer_pass` once (a forward pass and a backward pass
that stops at the layer) and turns the weights into the map with
:func:`~xaisurvey.attribution._cam.weighted_map`. The forward-only variants (Score-CAM,
Ablation-CAM) use :func:`prepare` and their own batched passes.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ._cam import layer_pass, weighted_map
from ._core import (
    Target,
    TargetLike,
    as_target,
    check_choice,
    check_input,
    resolve_layer,
)

__all__ = ["prepare", "gradient_cam", "safe_divide"]

WeightRule = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def prepare(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    layer: nn.Module | str,
    *,
    relu: object,
    upsample: object,
    method: str,
) -> tuple[torch.Tensor, Target, str, nn.Module]:
    """Check ``x``, ``relu``, ``upsample``, ``target``; resolve ``layer``."""
    x = check_input(x, model, method=method)
    if not isinstance(relu, bool):
        raise ValueError(f"{method}: relu must be True or False, got {relu!r}")
    check_choice(upsample, ("bilinear", "nearest", None), "upsample", method)
    target_ = as_target(target, x.shape[0], method=method)
    name, module = resolve_layer(model, layer, method=method)
    return x, target_, name, module


def safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator`` with 0 where the denominator is 0
    (never NaN or inf)."""
    zero = denominator == 0
    safe = torch.where(zero, torch.ones_like(denominator), denominator)
    return torch.where(zero, torch.zeros_like(numerator), numerator / safe)


def gradient_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    layer: nn.Module | str,
    rule: WeightRule,
    *,
    relu: bool,
    upsample: str | None,
    method: str,
) -> torch.Tensor:
    """``up(ReLU(sum_k w_k A^k))``, ``w = rule(A, dS/dA)``: one pass each way."""
    x, target_, name, module = prepare(
        model, x, target, layer, relu=relu, upsample=upsample, method=method
    )
    recorded = layer_pass(model, x, target_, module, name, method=method)
    assert recorded.gradient is not None
    weights = rule(recorded.activation, recorded.gradient)
    return weighted_map(
        recorded.activation,
        weights,
        relu=relu,
        size=tuple(x.shape[-2:]),
        upsample=upsample,
        method=method,
    )
