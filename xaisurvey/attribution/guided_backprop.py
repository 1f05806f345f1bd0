"""Guided Backpropagation (Springenberg, Dosovitskiy, Brox and Riedmiller, 2015) and the
deconvnet rule.

The three methods differ only in how a gradient ``g`` (arriving from above) passes
backwards through a ReLU whose forward input was ``z``:

* ``"gradient"`` (plain backpropagation): ``g * [z > 0]``;
* ``"deconvnet"`` (Zeiler and Fergus, 2014): ``max(g, 0)``, the forward pattern is
  ignored;
* ``"guided"`` (Springenberg et al.): ``max(g, 0) * [z > 0]``, both.

The rule is installed for one forward pass with a ``torch.overrides.TorchFunctionMode``
that replaces every ReLU call by an ``autograd.Function`` carrying the rule. This
catches ``nn.ReLU`` (it calls ``F.relu``), ``inplace=True``, and ``F.relu`` /
``torch.relu`` / ``Tensor.relu_`` written directly in a model's ``forward`` -- hooks on
``nn.ReLU`` modules miss the latter. ``nn.ReLU6`` / ``F.relu6`` /
``F.hardtanh(min_val=0)`` get the same rule with the mask ``[0 < z < max]``. Other
activations (LeakyReLU, ELU, GELU, SiLU, Mish, Hardswish, Softplus, PReLU, ...) keep
their ordinary gradient and a :class:`GuidedBackpropWarning` names them.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ._core import TargetLike, as_target, check_bool, check_input, input_gradient
from .normalize import reduce_channels

__all__ = ["guided_backprop", "relu_backward_rule", "GuidedBackpropWarning", "RULES"]

#: The backward rules through a ReLU, see the module docstring.
RULES = ("guided", "deconvnet", "gradient")


class GuidedBackpropWarning(UserWarning):
    """The model uses an activation the backward rule does not apply to, or no ReLU at
    all."""


@dataclass
class _RuleBox:
    """The rule a ReLU applies in its backward pass; shared, so it can be switched after
    the forward."""

    rule: str


@dataclass
class RuleState:
    """What :func:`relu_backward_rule` saw during the forward pass."""

    rule: str
    box: _RuleBox
    relus: int = 0
    unhandled: list[str] = field(default_factory=list)
    # ReLU-like calls the rule could not reach
    missed: dict[str, int] = field(default_factory=dict)
    downstream: _RuleBox | None = None
    downstream_relus: int = 0

    def start_downstream(self) -> None:
        """From now on, ReLUs get a separate, switchable rule (used by Guided
        Grad-CAM)."""
        self.downstream = _RuleBox(self.rule)
        self.box = self.downstream


def _backward(
    rule: str, grad: torch.Tensor, out: torch.Tensor, upper: float | None
) -> torch.Tensor:
    """The signal below a ReLU whose forward output was ``out`` = clamp(z, 0, upper).

    ``out > 0`` exactly where ``z > 0`` (and ``out < upper`` exactly where
    ``z < upper``), so the forward pattern is read from the output, as PyTorch's own
    ReLU backward does. One new tensor, like the native backward: the fused
    ``threshold_backward`` / ``hardtanh_backward`` kernels apply the pattern, the guided
    rule then clamps that fresh tensor in place (``grad`` itself may be shared with
    other branches of the graph and is never modified).
    """
    if rule == "deconvnet":
        return grad.clamp(min=0)
    if upper is None:
        passed = torch.ops.aten.threshold_backward(grad, out, 0.0)
    else:
        passed = torch.ops.aten.hardtanh_backward(grad, out, 0.0, upper)
    return passed if rule == "gradient" else passed.clamp_(min=0)  # guided


class _RuleReLU(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, z: torch.Tensor, box: _RuleBox, upper: float | None
    ) -> torch.Tensor:
        out = z.clamp(min=0) if upper is None else z.clamp(0, upper)
        ctx.save_for_backward(out)
        ctx.box, ctx.upper = box, upper
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return _backward(ctx.box.rule, grad, out, ctx.upper), None, None


class _RuleReLUInplace(_RuleReLU):
    """The in-place ReLU: same backward as :class:`_RuleReLU`, the forward overwrites
    ``z``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, z: torch.Tensor, box: _RuleBox, upper: float | None
    ) -> torch.Tensor:
        if upper is None:
            z.clamp_(min=0)
        else:
            z.clamp_(0, upper)
        ctx.mark_dirty(z)
        ctx.save_for_backward(z)
        ctx.box, ctx.upper = box, upper
        return z


_RELU = {F.relu, torch.relu, torch.Tensor.relu}
_RELU_INPLACE = {torch.relu_, torch.Tensor.relu_}
_RELU6 = {F.relu6}
_HARDTANH = {F.hardtanh}
_CLAMP = {
    torch.clamp,
    torch.Tensor.clamp,
    torch.clamp_,
    torch.Tensor.clamp_,
    torch.clip,
    torch.Tensor.clip,
    torch.clamp_min,
    torch.Tensor.clamp_min,
    torch.Tensor.clamp_min_,
}
_OTHER = {
    F.leaky_relu: "leaky_relu",
    F.elu: "elu",
    F.selu: "selu",
    F.celu: "celu",
    F.gelu: "gelu",
    F.silu: "silu",
    F.mish: "mish",
    F.hardswish: "hardswish",
    F.softplus: "softplus",
    F.prelu: "prelu",
    F.rrelu: "rrelu",
    F.glu: "glu",
    F.hardsigmoid: "hardsigmoid",
}


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: object) -> object:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _is_relu_clamp(func, args: tuple, kwargs: dict) -> bool:  # noqa: ANN001
    if func in (torch.clamp_min, torch.Tensor.clamp_min, torch.Tensor.clamp_min_):
        low, high = _arg(args, kwargs, 1, "min", None), None
    else:
        low, high = _arg(args, kwargs, 1, "min", None), _arg(
            args, kwargs, 2, "max", None
        )
    return high is None and isinstance(low, (int, float)) and float(low) == 0.0


def _scripted_relus(model: nn.Module | None) -> dict[str, int]:
    """ReLU calls inside TorchScript submodules, which no Python-level mode can
    intercept."""
    found: dict[str, int] = {}
    if model is None:
        return found
    for name, module in model.named_modules():
        if isinstance(module, torch.jit.ScriptModule):
            try:
                graph = str(module.inlined_graph)
            except (AttributeError, RuntimeError):
                graph = ""
            count = sum(
                graph.count(op)
                for op in (
                    "aten::relu(",
                    "aten::relu_(",
                    "aten::relu6(",
                    "aten::hardtanh(",
                )
            )
            if count:
                found[f"ReLU in scripted module {name or type(module).__name__!r}"] = (
                    count
                )
    return found


class _SwapReLUs(TorchFunctionMode):
    def __init__(self, state: RuleState) -> None:
        super().__init__()
        self.state = state

    def _apply(
        self, z: torch.Tensor, inplace: bool, upper: float | None
    ) -> torch.Tensor:
        state = self.state
        state.relus += 1
        if state.downstream is not None:
            state.downstream_relus += 1
        if not (torch.is_grad_enabled() and z.requires_grad):
            # Outside the graph the rule is irrelevant: plain (in-place) clamp.
            return (
                (z.clamp_(0, upper) if upper is not None else z.clamp_(min=0))
                if inplace
                else (z.clamp(0, upper) if upper is not None else z.clamp(min=0))
            )
        function = _RuleReLUInplace if inplace else _RuleReLU
        return function.apply(z, state.box, upper)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in _RELU:
            return self._apply(
                args[0],
                bool(_arg(args, kwargs, 1, "inplace", False)) and func is F.relu,
                None,
            )
        if func in _RELU_INPLACE:
            return self._apply(args[0], True, None)
        if func in _RELU6:
            return self._apply(
                args[0], bool(_arg(args, kwargs, 1, "inplace", False)), 6.0
            )
        if func in _HARDTANH and float(_arg(args, kwargs, 1, "min_val", -1.0)) == 0.0:
            upper = float(_arg(args, kwargs, 2, "max_val", 1.0))
            return self._apply(
                args[0], bool(_arg(args, kwargs, 3, "inplace", False)), upper
            )
        if func in _CLAMP and _is_relu_clamp(func, args, kwargs):
            # clamp(min=0) computes a ReLU, but replacing it would change code that may
            # mean something else (a value range): it keeps its plain gradient, and is
            # counted.
            self.state.missed["clamp(min=0)"] = (
                self.state.missed.get("clamp(min=0)", 0) + 1
            )
        if func in _OTHER or func in _HARDTANH:
            name = _OTHER.get(func, "hardtanh")
            if name not in self.state.unhandled:
                self.state.unhandled.append(name)
        return func(*args, **kwargs)


@contextlib.contextmanager
def relu_backward_rule(
    rule: str = "guided",
    *,
    method: str = "guided_backprop",
    model: nn.Module | None = None,
) -> Iterator[RuleState]:
    """Within the block, every ReLU called in a forward pass backpropagates with
    ``rule``.

    Run only the forward pass inside the block; the backward pass may run after it (the
    rule travels with the graph). On exit a :class:`GuidedBackpropWarning` names
    activations the rule was not applied to, says that no ReLU ran, or -- when ReLU-like
    operations ran that the rule could not reach (``clamp(min=0)``; ReLUs inside a
    TorchScript submodule of ``model``) -- gives the count of what was and what was not
    guided, since the result then mixes two rules.

    Example:
        >>> import torch
        >>> z = torch.tensor([-1.0, 2.0], requires_grad=True)
        >>> with relu_backward_rule("guided"):
        ...     y = torch.relu(z)
        >>> torch.autograd.grad(y @ torch.tensor([5.0, -3.0]), z)[0]
        tensor([0., 0.])
    """
    if rule not in RULES:
        raise ValueError(
            f"{method}: rule must be one of {', '.join(RULES)}, got {rule!r}"
        )
    state = RuleState(rule=rule, box=_RuleBox(rule))
    with _SwapReLUs(state):
        yield state
    state.missed.update(_scripted_relus(model))
    if state.missed and rule != "gradient":
        missed = ", ".join(f"{what} x{count}" for what, count in state.missed.items())
        warnings.warn(
            f"{method}: the {rule!r} rule was applied at {state.relus} ReLU call(s),"
            f" but {sum(state.missed.values())} ReLU-like operation(s) kept the plain"
            f" gradient ({missed}); the result mixes the two rules",
            GuidedBackpropWarning,
            stacklevel=4,
        )
    if state.unhandled:
        warnings.warn(
            f"{method}: the model uses {', '.join(state.unhandled)}, which the {rule!r}"
            " rule does not apply to; gradients pass through these activations"
            " unchanged (the rule applies to ReLU and ReLU6 only)",
            GuidedBackpropWarning,
            stacklevel=4,
        )
    if state.relus == 0 and not state.missed:
        warnings.warn(
            f"{method}: no ReLU ran in the forward pass, so the {rule!r} rule changed"
            " nothing: the result is the plain gradient",
            GuidedBackpropWarning,
            stacklevel=4,
        )


def guided_backprop(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    rule: str = "guided",
    absolute: bool = False,
    reduce: str | None = None,
) -> torch.Tensor:
    """Guided Backprop: the input gradient with negative signals stopped at every ReLU.

    Paper: J. T. Springenberg et al., "Striving for Simplicity: The All Convolutional
    Net" (ICLR workshop 2015); deconvnet rule: M. D. Zeiler and R. Fergus, "Visualizing
    and Understanding Convolutional Networks" (ECCV 2014).

    Formula: backpropagate ``d y^c / d x`` as usual except through each ReLU
    ``a = max(z, 0)``, where the signal ``R`` from above becomes
    ``R_in = [z > 0] * max(R, 0)`` (``rule="guided"``), ``max(R, 0)`` (``"deconvnet"``)
    or ``[z > 0] * R`` (``"gradient"``, plain backprop).

    ReLUs are found wherever they are called (``nn.ReLU`` with or without ``inplace``,
    ``F.relu``, ``torch.relu``, ``Tensor.relu_``); ReLU6 and ``hardtanh(0, max)`` get
    the same rule with mask ``[0 < z < max]``; any other activation keeps its gradient
    and triggers a :class:`GuidedBackpropWarning`. One forward pass and one backward
    pass to the input.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: class index, one index per image, or a callable ``output -> (N,)``
            scores.
        rule: ``"guided"`` (default), ``"deconvnet"`` or ``"gradient"``.
        absolute: return the absolute values.
        reduce: ``None`` keeps (N, C, H, W); a ``reduce_channels`` name gives (N, H, W).

    Returns:
        (N, C, H, W) signed attributions (or (N, H, W) with ``reduce``), not normalised.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3),
        ...     torch.nn.ReLU(inplace=True),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 2),
        ... )
        >>> guided_backprop(net, torch.rand(2, 3, 8, 8), target=0).shape
        torch.Size([2, 3, 8, 8])
    """
    x = check_input(x, model, method="guided_backprop")
    check_bool(absolute, "absolute", "guided_backprop")
    target_ = as_target(target, x.shape[0], method="guided_backprop")
    if rule not in RULES:
        raise ValueError(
            f"guided_backprop: rule must be one of {', '.join(RULES)}, got {rule!r}"
        )
    grad = input_gradient(
        model,
        x,
        target_,
        method="guided_backprop",
        forward_context=lambda: relu_backward_rule(
            rule, method="guided_backprop", model=model
        ),
    )
    if absolute:
        grad = grad.abs()
    return grad if reduce is None else reduce_channels(grad, reduce)
