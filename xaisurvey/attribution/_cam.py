"""The base every class-activation-map method shares: one pass that captures a layer,
and one map.

A CAM-family method is a *channel-weight rule*: given the layer's activations ``A``
(N, K, h, w), and, for gradient methods, the gradient ``dS/dA`` of the target score, it
produces weights ``w`` of shape (N, K) (one per channel) or (N, K, h, w) (one per
position, LayerCAM and HiResCAM), and the map is ``ReLU(sum_k w_k * A^k)`` at layer
resolution, then upsampled. :func:`layer_pass` runs the forward (and backward) pass
once; :func:`weighted_map` turns the weights into the map. Grad-CAM, Guided Grad-CAM and
the variants in the CAM-family chapter are written over these two functions.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._core import (
    Target,
    capture_layer,
    check_channels,
    model_guard,
    select_scores,
    upsample_maps,
)
from .guided_backprop import relu_backward_rule

__all__ = ["LayerPass", "layer_pass", "weighted_map"]


@dataclass
class LayerPass:
    """What one pass through the model recorded (all tensors detached).

    Attributes:
        activation: the layer's output ``A``, (N, K, h, w).
        gradient: ``dS/dA`` with the plain chain rule, (N, K, h, w), or ``None`` without
            gradients.
        output: the model's output, as the model returned it.
        scores: the target scores ``S`` (N,).
        input_gradient: the gradient w.r.t. the input under ``input_rule``
            (Guided Grad-CAM), or ``None``.
    """

    activation: torch.Tensor
    gradient: torch.Tensor | None
    output: Any
    scores: torch.Tensor
    input_gradient: torch.Tensor | None = None


def _detach(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (tuple, list)):
        return type(output)(_detach(o) for o in output)
    if isinstance(output, dict):
        return {k: _detach(v) for k, v in output.items()}
    return output


def layer_pass(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    module: nn.Module,
    name: str,
    *,
    method: str,
    gradient: bool = True,
    input_rule: str | None = None,
) -> LayerPass:
    """One forward pass capturing ``module``'s output and, with ``gradient``, one
    backward pass.

    Args:
        model, x, target: the checked model, input and target.
        module, name: the layer (from ``resolve_layer``); it must run exactly once and
            output a spatial map (N, K, h, w).
        method: the caller's name, for messages.
        gradient: compute ``dS/dA`` (a backward pass that stops at the layer).
        input_rule: also compute the input gradient with this ReLU rule (``"guided"``):
            the ReLUs after the layer backpropagate plainly for ``dS/dA`` and with the
            rule for the input gradient (one backward when no ReLU runs after the layer,
            else a second backward through the head only).

    Raises:
        ValueError: the layer did not run, ran twice or is not spatial; with
            ``gradient``, the target score does not depend on the layer (no path in the
            graph, as opposed to a zero gradient, which is a real answer and gives a
            zero map).
    """
    with model_guard(
        model, needs_grad=gradient or input_rule is not None, method=method
    ) as handles:
        check_channels(model, x.shape[1], handles, method=method)
        capture = capture_layer(module, name, handles)
        inputs = x.detach().requires_grad_(True) if input_rule is not None else x
        if input_rule is not None:
            rule_context = relu_backward_rule(input_rule, method=method, model=model)
        else:
            rule_context = contextlib.nullcontext()
        with rule_context as state:
            if state is not None:
                capture.on_capture.append(state.start_downstream)
            output = model(inputs)
        activation = capture.spatial(method)
        scores = select_scores(output, target, method=method, n=x.shape[0])
        grad_a = grad_x = None
        if gradient or input_rule is not None:
            if not scores.requires_grad:
                raise ValueError(
                    f"{method}: the target score does not depend on layer {name!r} (no"
                    " path in the graph from the layer to the score); pick a layer"
                    " that the score is computed from"
                )
            total = scores.sum()
            if input_rule is None:
                (grad_a,) = torch.autograd.grad(total, activation, allow_unused=True)
            # nothing to switch: one backward gives both gradients
            elif state.downstream_relus == 0:
                grad_x, grad_a = torch.autograd.grad(
                    total, (inputs, activation), allow_unused=True
                )
            else:
                assert state.downstream is not None
                state.downstream.rule = "gradient"
                (grad_a,) = torch.autograd.grad(
                    total, activation, retain_graph=True, allow_unused=True
                )
                state.downstream.rule = input_rule
                (grad_x,) = torch.autograd.grad(total, inputs, allow_unused=True)
            if grad_a is None:
                raise ValueError(
                    f"{method}: the target score does not depend on layer {name!r} (no"
                    " path in the graph from the layer to the score); pick a layer"
                    " that the score is computed from"
                )
            if input_rule is not None and grad_x is None:
                grad_x = torch.zeros_like(inputs)
    return LayerPass(
        activation=activation.detach(),
        gradient=grad_a,
        output=_detach(output),
        scores=scores.detach(),
        input_gradient=grad_x,
    )


def weighted_map(
    activation: torch.Tensor,
    weights: torch.Tensor,
    *,
    relu: bool,
    size: tuple[int, int],
    upsample: str | None,
    method: str,
) -> torch.Tensor:
    """``up(ReLU(sum_k w_k A^k))``: (N, H, W) from A (N, K, h, w), w (N, K[, h, w])."""
    if weights.dim() == 2:
        maps = torch.einsum("nk,nkhw->nhw", weights.to(activation.dtype), activation)
    else:
        maps = (weights.to(activation.dtype) * activation).sum(dim=1)
    if relu:
        maps = maps.clamp(min=0)
    return upsample_maps(maps, size, upsample, method=method)
