"""Layer-wise relevance propagation (LRP): the score redistributed layer by layer, down
to pixels.

Bach et al. (2015) propagate the target score ``R = f_c(x)`` backwards: each layer hands
the relevance of its outputs to its inputs in proportion to their contributions, so that
(for the conserving rules) every layer's relevance sums to the score. Written as a
*modified gradient* (Montavon et al. 2019; zennit, Anders et al. 2021), a linear layer
with rule ``rho`` does::

    R_in = x * rho(W)^T (R_out / stab(rho(W) x + rho(b)))

which this module runs with autograd: every convolution and dense layer of the forward
pass is wrapped in an ``autograd.Function`` whose backward applies the layer's rule (see
:mod:`xaisurvey.attribution._lrp_rules` for the rules and the composites, which follow
zennit's names and defaults: ``epsilon=1e-6``, ``gamma=0.25``, stabiliser ``1e-6``).

The user's model is not modified (no copy either): the rules are installed for one
forward pass by a ``torch.overrides.TorchFunctionMode`` that sees every operation the
model runs, so it finds layers, BatchNorms and residual additions wherever they are
called (modules or functional code):

* **BatchNorm folding**: a BatchNorm (eval mode, running statistics) whose input is a
  convolution's or dense layer's output is folded into that layer, ``W' = W s``,
  ``b' = (b - mu) s + beta``, ``s = gamma / sqrt(var + eps)``
  (zennit's ``SequentialMergeBatchNorm``),
  and the rule is applied to the folded layer. Any other BatchNorm raises.
* **Residual additions** (``out += identity``, ``x + f(x)``): split by contribution,
  ``R_a = a R / stab(a + b)``, ``R_b = b R / stab(a + b)`` (zennit's
  ``ResNetCanonizer``: a ``Sum`` layer with the ``Norm`` rule).
* ReLU-like activations pass relevance unchanged; average pooling (and ``mean`` /
  ``sum``) splits it by contribution; max pooling keeps its gradient (winner takes all);
  reshaping, slicing, padding and concatenation move it with the values; elementwise
  operations with constants (the model's own input normalisation) pass it unchanged.
* In-place operations (``+=``, ``add_``, ``relu_``, ``inplace=True``) run out of place,
  which is what code that uses their result needs (``out += identity``,
  ``nn.ReLU(inplace=True)``); a tensor changed in place and then used again under its
  old name raises.
* Anything else that depends on the input (a product of two such tensors, softmax,
  upsampling, an unlisted operation) raises a one-line ``ValueError`` naming the
  operation and the module.

The input domain: images in [``low``, ``high``] = [0, 1] by default; the z^B rule of the
first layer uses these bounds carried through the model's own normalisation
(``(x - mean) / std`` turns them into ``(0 - mean) / std`` and ``(1 - mean) / std`` per
channel).
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair
from torch.overrides import TorchFunctionMode

from ._core import (
    TargetLike,
    as_target,
    check_channels,
    check_input,
    model_guard,
    select_scores,
)
from ._lrp_rules import (
    COMPOSITES,
    RULES,
    Composite,
    Layer,
    LayerFunction,
    LayerRelevance,
    PassFunction,
    PoolFunction,
    Settings,
    SumFunction,
)
from .normalize import reduce_channels

__all__ = ["lrp", "relevance_by_layer", "RULES", "COMPOSITES", "LayerRelevance"]

_METHOD = "lrp"
_T = torch.Tensor


def _where(state: "_State") -> str:
    return f"module {state.stack[-1]!r}" if state.stack else "the model's forward"


def _fname(func: Callable) -> str:
    return getattr(func, "__name__", None) or repr(func)


@dataclass
class _State:
    composite: Composite
    settings: Settings
    stack: list[str] = field(default_factory=list)
    layers: int = 0
    # Tensors an in-place operation was called on: it ran out of place here, so the old
    # tensor must not be used again (id -> weak reference).
    stale: dict[int, Any] = field(default_factory=dict)

    def mark_stale(self, t: _T) -> None:
        self.stale[id(t)] = weakref.ref(t)

    def is_stale(self, t: object) -> bool:
        ref = self.stale.get(id(t))
        return ref is not None and ref() is t


# --- the operations and their handlers
# ---------------------------------------------------------

_SIGNATURES: dict[Callable, inspect.Signature] = {}


def _bind(func: Callable, args: tuple, kwargs: dict) -> inspect.BoundArguments:
    if func not in _SIGNATURES:
        _SIGNATURES[func] = inspect.signature(func)
    bound = _SIGNATURES[func].bind(*args, **kwargs)
    bound.apply_defaults()
    return bound


def _graph(t: object) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


def _bounds(t: object) -> tuple[_T, _T] | None:
    return getattr(t, "_lrp_bounds", None)


def _conv_padding(
    padding: Any, weight: _T, dilation: list[int], stride: list[int], where: str
) -> list[int]:
    if padding == "valid":
        return [0, 0]
    if padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
        if any(t % 2 for t in total) or any(s != 1 for s in stride):
            raise ValueError(
                f"{_METHOD}: padding='same' with an even kernel in {where} is not "
                "supported"
            )
        return [t // 2 for t in total]
    return list(_pair(padding))


def _layer_rule(state: _State, kind: str, x: _T) -> str:
    comp = state.composite
    first = _bounds(x) is not None
    if first and comp.first is not None and kind in comp.first_kinds:
        return comp.first
    return comp.conv if kind == "conv" else comp.linear


def _make_layer(
    state: _State, kind: str, x: _T, weight: _T, bias: _T | None, conv: dict
) -> Layer:
    where = _where(state)
    if weight.requires_grad or (bias is not None and bias.requires_grad):
        raise ValueError(
            f"{_METHOD}: the weights of the layer in {where} depend on the input"
        )
    rule = _layer_rule(state, kind, x)
    bounds = _bounds(x)
    if rule == "zb" and bounds is None:
        raise ValueError(
            f"{_METHOD}: the zb rule needs the input bounds, but the layer in {where} "
            "does not read "
            "the model input (zb is a first-layer rule; use a composite)"
        )
    state.layers += 1
    low, high = bounds if bounds is not None else (None, None)
    name = state.stack[-1] if state.stack else kind
    bias = None if bias is None else bias.detach()
    return Layer(kind, name, rule, weight.detach(), bias, conv, low, high)


def _wrap_layer(state: _State, x: _T, z: _T, layer: Layer) -> _T:
    out = LayerFunction.apply(x, z, layer, state.settings)
    out._lrp_source = (x, layer)
    return out


def _conv(state: _State, func: Callable, args: tuple, kwargs: dict) -> _T:
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    b = {
        "bias": None,
        "stride": 1,
        "padding": 0,
        "dilation": 1,
        "groups": 1,
        **dict(zip(names, args)),
        **kwargs,
    }
    x, weight, bias = b["input"], b["weight"], b["bias"]
    if x.dim() != 4:
        raise ValueError(
            f"{_METHOD}: only batched 4-D input to conv2d is supported, got "
            f"{tuple(x.shape)} "
            f"in {_where(state)}"
        )
    stride, dilation = list(_pair(b["stride"])), list(_pair(b["dilation"]))
    padding = _conv_padding(b["padding"], weight, dilation, stride, _where(state))
    conv = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": int(b["groups"]),
    }
    layer = _make_layer(state, "conv", x, weight, bias, conv)
    with torch.no_grad():
        z = F.conv2d(x, weight, bias, **conv)
    return _wrap_layer(state, x, z, layer)


def _linear(state: _State, func: Callable, args: tuple, kwargs: dict) -> _T:
    x = args[0] if args else kwargs["input"]
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    layer = _make_layer(state, "linear", x, weight, bias, {})
    with torch.no_grad():
        z = F.linear(x, weight, bias)
    return _wrap_layer(state, x, z, layer)


def _batch_norm(state: _State, func: Callable, args: tuple, kwargs: dict) -> _T:
    b = _bind(F.batch_norm, args, kwargs).arguments
    inp, mean, var = b["input"], b["running_mean"], b["running_var"]
    where = _where(state)
    if b["training"] or mean is None or var is None:
        raise ValueError(
            f"{_METHOD}: the BatchNorm in {where} uses batch statistics; LRP folds "
            "BatchNorm with "
            "running statistics only"
        )
    source = getattr(inp, "_lrp_source", None)
    if source is None:
        raise ValueError(
            f"{_METHOD}: the BatchNorm in {where} does not directly follow a "
            "convolution or linear "
            "layer, so it cannot be folded into one"
        )
    x, layer = source
    scale = (var + b["eps"]).rsqrt()
    if b["weight"] is not None:
        scale = b["weight"].detach() * scale
    shift = -mean * scale + (0 if b["bias"] is None else b["bias"].detach())
    if layer.bias is not None:
        shift = shift + layer.bias * scale
    view = (-1,) + (1,) * (layer.weight.dim() - 1)
    folded = Layer(
        layer.kind,
        layer.name,
        layer.rule,
        layer.weight * scale.view(view),
        shift,
        layer.conv,
        layer.low,
        layer.high,
        merged=state.stack[-1] if state.stack else "batch_norm",
    )
    with torch.no_grad():
        z = func(inp.detach(), *args[1:], **kwargs)
    out = LayerFunction.apply(x, z, folded, state.settings)
    return out


def _inplace_off(func: Callable, args: tuple, kwargs: dict) -> Callable[[_T], _T]:
    if func in (torch.relu_, _T.relu_):
        return torch.relu
    if func in (_T.sigmoid_,):
        return torch.sigmoid
    if func in (_T.tanh_,):
        return torch.tanh
    if func not in _SIGNATURES:
        try:
            _SIGNATURES[func] = inspect.signature(func)
        except (TypeError, ValueError):
            _SIGNATURES[func] = inspect.Signature()
    params = _SIGNATURES[func].parameters
    if "inplace" in params:
        bound = _bind(func, args, kwargs)
        bound.arguments["inplace"] = False
        rest_args, rest_kwargs = bound.args[1:], bound.kwargs
        return lambda t: func(t, *rest_args, **rest_kwargs)
    return lambda t: func(t, *args[1:], **kwargs)


def _activation(state: _State, func: Callable, args: tuple, kwargs: dict) -> _T:
    x = args[0] if args else kwargs["input"]
    if not _graph(x):
        return func(*args, **kwargs)
    if (
        func in _INPLACE
        or kwargs.get("inplace")
        or (len(args) > 1 and args[-1] is True)
    ):
        state.mark_stale(x)
    return PassFunction.apply(x, _inplace_off(func, args, kwargs))


_ADD = {torch.add, _T.add, _T.add_, _T.__add__, _T.__iadd__, _T.__radd__}
_SUB = {torch.sub, torch.subtract, _T.sub, _T.sub_, _T.__sub__, _T.__isub__}
_RSUB = {torch.rsub, _T.__rsub__}
_MUL = {
    torch.mul,
    torch.multiply,
    _T.mul,
    _T.mul_,
    _T.__mul__,
    _T.__imul__,
    _T.__rmul__,
}
_DIV = {
    torch.div,
    torch.divide,
    torch.true_divide,
    _T.div,
    _T.div_,
    _T.__truediv__,
    _T.__itruediv__,
}
_RDIV = {_T.__rtruediv__}
_INPLACE = {
    _T.add_,
    _T.__iadd__,
    _T.sub_,
    _T.__isub__,
    _T.mul_,
    _T.__imul__,
    _T.div_,
    _T.__itruediv__,
    torch.relu_,
    _T.relu_,
    _T.sigmoid_,
    _T.tanh_,
}
_OUT_OF_PLACE = {
    **{f: torch.add for f in _ADD},
    **{f: torch.sub for f in _SUB},
    **{f: torch.mul for f in _MUL},
    **{f: torch.div for f in _DIV},
}


def _arithmetic(state: _State, func: Callable, args: tuple, kwargs: dict) -> _T:
    a = args[0]
    other = args[1] if len(args) > 1 else kwargs.get("other")
    extra = {k: v for k, v in kwargs.items() if k != "other"}
    where = _where(state)
    if func in _RSUB:  # rsub(a, other) = other - a
        a, other, func = other, a, torch.sub
    if func in _RDIV:  # other / a: not affine in a
        if _graph(other) or not _graph(a):
            raise ValueError(
                f"{_METHOD}: cannot propagate relevance through a division by a "
                "tensor that depends "
                f"on the input in {where}"
            )
        return PassFunction.apply(a, lambda t: other / t)
    op = _OUT_OF_PLACE.get(func, func)
    if _graph(a) and _graph(other):
        if op in (torch.add, torch.sub):
            if extra.get("alpha", 1) != 1:
                raise ValueError(
                    f"{_METHOD}: add/sub with alpha != 1 of two tensors in {where} is "
                    "not supported"
                )
            return SumFunction.apply(
                a,
                other,
                1.0 if op is torch.add else -1.0,
                state.stack[-1] if state.stack else "sum",
                state.settings,
            )
        raise ValueError(
            f"{_METHOD}: cannot propagate relevance through a product or quotient of "
            "two tensors that "
            f"depend on the input ({_fname(func)} in {where})"
        )
    x, constant, x_first = (a, other, True) if _graph(a) else (other, a, False)

    def fn(t: _T) -> _T:
        return op(t, constant, **extra) if x_first else op(constant, t, **extra)

    with torch.no_grad():
        probe = fn(x.detach())
    if probe.shape != x.shape:
        raise ValueError(
            f"{_METHOD}: {_fname(func)} in {where} broadcasts a tensor that depends "
            "on the input from "
            f"{tuple(x.shape)} to {tuple(probe.shape)}; relevance cannot be split "
            "there"
        )
    if not x_first and op is torch.div:
        raise ValueError(
            f"{_METHOD}: cannot propagate relevance through a division by a tensor "
            "that depends on the "
            f"input in {where}"
        )
    out = PassFunction.apply(x, fn)
    bounds = _bounds(x)
    if bounds is not None:
        low, high = fn(bounds[0]), fn(bounds[1])
        out._lrp_bounds = (torch.minimum(low, high), torch.maximum(low, high))
    return out


def _pool(state: _State, func: Callable, args: tuple, kwargs: dict) -> _T:
    x = args[0] if args else kwargs["input"]
    rest = args[1:]
    return PoolFunction.apply(
        x,
        lambda t: func(t, *rest, **kwargs),
        state.stack[-1] if state.stack else _fname(func),
        state.settings,
    )


_ACTIVATIONS = [
    F.relu,
    torch.relu,
    _T.relu,
    torch.relu_,
    _T.relu_,
    F.relu6,
    F.hardtanh,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.celu,
    F.gelu,
    F.silu,
    F.mish,
    F.softplus,
    F.hardswish,
    F.hardsigmoid,
    torch.sigmoid,
    _T.sigmoid,
    _T.sigmoid_,
    torch.tanh,
    _T.tanh,
    _T.tanh_,
    F.prelu,
]
_POOLS = [
    F.avg_pool2d,
    torch._C._nn.avg_pool2d,
    F.adaptive_avg_pool2d,
    torch._C._nn.adaptive_avg_pool2d,
    torch.avg_pool1d,
    F.avg_pool1d,
    F.adaptive_avg_pool1d,
    torch.mean,
    _T.mean,
    torch.sum,
    _T.sum,
]

_HANDLERS: dict[Callable, Callable] = {
    F.conv2d: _conv,
    F.linear: _linear,
    F.batch_norm: _batch_norm,
    **{f: _activation for f in _ACTIVATIONS},
    **{f: _arithmetic for f in _ADD | _SUB | _RSUB | _MUL | _DIV | _RDIV},
    **{f: _pool for f in _POOLS},
}

#: Operations that keep their gradient: they move values (and relevance) around without
#: mixing them.
_MOVES = {
    _T.view,
    _T.view_as,
    _T.reshape,
    _T.reshape_as,
    torch.reshape,
    torch.flatten,
    _T.flatten,
    torch.squeeze,
    _T.squeeze,
    torch.unsqueeze,
    _T.unsqueeze,
    torch.permute,
    _T.permute,
    torch.transpose,
    _T.transpose,
    _T.contiguous,
    _T.__getitem__,
    torch.clone,
    _T.clone,
    _T.to,
    _T.float,
    _T.double,
    _T.type_as,
    F.pad,
    torch._C._nn.pad,
    torch.narrow,
    _T.narrow,
    _T.expand_as,
}
_MOVES_MANY = {
    torch.cat,
    torch.concat,
    torch.stack,
    torch.split,
    _T.split,
    torch.chunk,
    _T.chunk,
    torch.unbind,
    _T.unbind,
}
#: Operations that keep their gradient, which routes the relevance of a window to its
#: maximum.
_MAX = {
    F.max_pool2d,
    torch.max_pool2d,
    torch._C._nn.max_pool2d_with_indices,
    F.adaptive_max_pool2d,
    torch._C._nn.adaptive_max_pool2d,
    F.max_pool1d,
    torch.max_pool1d,
}
#: Identity in eval mode.
_IDENTITY = {
    F.dropout,
    torch.dropout,
    F.dropout2d,
    F.dropout1d,
    torch.feature_dropout,
    torch.alpha_dropout,
    F.alpha_dropout,
}
_GRADIENT_OPS = _MOVES | _MOVES_MANY | _MAX | _IDENTITY


def _graph_args(args: tuple, kwargs: dict) -> bool:
    for value in (*args, *kwargs.values()):
        if _graph(value):
            return True
        if isinstance(value, (list, tuple)) and any(_graph(v) for v in value):
            return True
    return False


def _graph_result(result: object) -> bool:
    if isinstance(result, (list, tuple)):
        return any(_graph(r) for r in result)
    return _graph(result)


class _LRPMode(TorchFunctionMode):
    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state

    def check_stale(self, func: Callable, args: tuple, kwargs: dict) -> None:
        values = [*args, *kwargs.values()]
        values += [
            v for value in values if isinstance(value, (list, tuple)) for v in value
        ]
        if any(self.state.is_stale(v) for v in values):
            raise ValueError(
                f"{_METHOD}: a tensor changed by an in-place operation is used again"
                f" ({_fname(func)} in {_where(self.state)}); LRP runs in-place"
                " operations out of place, so use their result (x = x.add(y), x ="
                " torch.relu(x))"
            )

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if not _graph_args(args, kwargs):
            return func(*args, **kwargs)
        self.check_stale(func, args, kwargs)
        handler = _HANDLERS.get(func)
        if handler is not None:
            result = handler(self.state, func, args, kwargs)
            if func in _INPLACE:
                self.state.mark_stale(args[0])
            return result
        result = func(*args, **kwargs)
        if func in _GRADIENT_OPS:
            if (
                func in _MOVES
                and args
                and _bounds(args[0]) is not None
                and _graph(result)
            ):
                low, high = _bounds(args[0])
                rest = args[1:]
                result._lrp_bounds = (
                    func(low, *rest, **kwargs),
                    func(high, *rest, **kwargs),
                )
            return result
        if not _graph_result(result):
            return result
        raise ValueError(
            f"{_METHOD}: no relevance rule for {_fname(func)} in {_where(self.state)}"
            " (supported: convolutions, linear layers, BatchNorm after them, ReLU-like"
            " activations, sums, average and max pooling, reshaping)"
        )


def _track_names(model: nn.Module, state: _State, handles: list) -> None:
    for name, module in model.named_modules():
        label = name or type(module).__name__

        def push(_module: nn.Module, _inputs: tuple, label: str = label) -> None:
            state.stack.append(label)

        def pop(_module: nn.Module, _inputs: tuple, _output: object) -> None:
            if state.stack:
                state.stack.pop()

        handles.append(module.register_forward_pre_hook(push))
        handles.append(module.register_forward_hook(pop, always_call=True))


def _check_float(
    value: object, name: str, *, minimum: float = 0.0, strict: bool = False
) -> float:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value == value
    )
    if ok:
        ok = float(value) > minimum if strict else float(value) >= minimum
    if not ok or float(value) == float("inf"):
        relation = ">" if strict else ">="
        raise ValueError(
            f"{_METHOD}: {name} must be a finite number {relation} {minimum}, got "
            f"{value!r}"
        )
    return float(value)


def _resolve(
    composite: str | None, rule: str | None, first_rule: str | None
) -> Composite:
    if rule is not None and composite is not None:
        raise ValueError(
            f"{_METHOD}: give either rule= or composite=, not both (got "
            f"rule={rule!r}, "
            f"composite={composite!r})"
        )
    if rule is not None:
        if rule not in RULES:
            raise ValueError(
                f"{_METHOD}: rule must be one of {', '.join(map(repr, RULES))}, got "
                f"{rule!r}"
            )
        base = Composite(rule, rule, None, (), "")
    else:
        name = "epsilon_gamma_box" if composite is None else composite
        if name not in COMPOSITES:
            known = ", ".join(map(repr, COMPOSITES))
            raise ValueError(
                f"{_METHOD}: composite must be one of {known}, got {composite!r}"
            )
        base = COMPOSITES[name]
    if first_rule is not None:
        if first_rule not in RULES:
            raise ValueError(
                f"{_METHOD}: first_rule must be one of {', '.join(map(repr, RULES))}, "
                f"got {first_rule!r}"
            )
        base = Composite(
            base.conv, base.linear, first_rule, ("conv", "linear"), base.zennit
        )
    return base


def _bound_tensor(value: object, name: str, x: _T) -> _T:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        t = torch.tensor(float(value), dtype=x.dtype, device=x.device)
    elif isinstance(value, torch.Tensor) and value.is_floating_point():
        t = value.detach().to(dtype=x.dtype, device=x.device)
    else:
        raise ValueError(
            f"{_METHOD}: {name} must be a number or a float tensor broadcastable to "
            f"x, got {value!r}"
        )
    try:
        t = torch.broadcast_to(t, x.shape).clone()
    except RuntimeError:
        raise ValueError(
            f"{_METHOD}: {name} of shape {tuple(t.shape)} does not broadcast to x's "
            "shape "
            f"{tuple(x.shape)}"
        ) from None
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{_METHOD}: {name} must be finite")
    return t


def _propagate(
    model: nn.Module,
    x: _T,
    target: TargetLike,
    *,
    composite: str | None,
    rule: str | None,
    first_rule: str | None,
    epsilon: float,
    gamma: float,
    stabilizer: float,
    low: object,
    high: object,
    trace: list | None,
) -> _T:
    x = check_input(x, model, method=_METHOD)
    target_ = as_target(target, x.shape[0], method=_METHOD)
    comp = _resolve(composite, rule, first_rule)
    settings = Settings(
        _check_float(epsilon, "epsilon"),
        _check_float(gamma, "gamma"),
        _check_float(stabilizer, "stabilizer"),
        trace,
    )
    low_t, high_t = _bound_tensor(low, "low", x), _bound_tensor(high, "high", x)
    if not bool((low_t <= high_t).all()):
        raise ValueError(
            f"{_METHOD}: low must be <= high everywhere, got low={low!r}, high={high!r}"
        )
    state = _State(comp, settings)
    with model_guard(model, method=_METHOD) as handles:
        check_channels(model, x.shape[1], handles, method=_METHOD)
        _track_names(model, state, handles)
        inputs = x.detach().requires_grad_(True)
        inputs._lrp_bounds = (low_t, high_t)
        mode = _LRPMode(state)
        with mode:
            output = model(inputs)
        state.stack.clear()
        outputs = output if isinstance(output, (list, tuple)) else [output]
        if any(state.is_stale(o) for o in outputs):
            raise ValueError(
                f"{_METHOD}: the model returns a tensor changed by an in-place "
                "operation; LRP runs in-place operations out of place, so use their "
                "result"
            )
        scores = select_scores(output, target_, method=_METHOD, n=x.shape[0])
        if state.layers == 0:
            raise ValueError(
                f"{_METHOD}: the model ran no convolution or linear layer on the input"
            )
        relevance = None
        if scores.requires_grad:
            (relevance,) = torch.autograd.grad(
                scores, inputs, grad_outputs=scores.detach(), allow_unused=True
            )
    if relevance is None:
        raise ValueError(
            f"{_METHOD}: the target score does not depend on the input x (no path in "
            "the graph)"
        )
    return relevance


def lrp(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    composite: str | None = None,
    rule: str | None = None,
    first_rule: str | None = None,
    epsilon: float = 1e-6,
    gamma: float = 0.25,
    stabilizer: float = 1e-6,
    low: float | torch.Tensor = 0.0,
    high: float | torch.Tensor = 1.0,
    reduce: str | None = None,
) -> torch.Tensor:
    """Layer-wise relevance propagation of the target score down to the input pixels.

    Paper: S. Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier
    Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7), 2015; G. Montavon et
    al., "Layer-Wise Relevance Propagation: An Overview", in *Explainable AI*
    (LNCS 11700), 2019; composites: M. Kohlbrenner et al., IJCNN 2020; the
    implementation follows zennit (Anders et al. 2021).

    Formula: the relevance at the output is the target score, ``R = f_c(x)``; a
    convolution or dense layer ``z = W a + b`` (BatchNorm folded in) passes
    ``R_in = a * rho(W)^T (R / stab(z_rho))`` to its input, with ``rho`` its rule
    (``epsilon``: ``W``; ``gamma``: ``W + gamma W+``; ``alpha1_beta0``: positive
    contributions only; ``alpha2_beta1``: ``2 x positive - 1 x negative``; ``zb``:
    ``a W - low W+ - high W-`` for inputs bounded by ``[low, high]``; ``flat``:
    uniform); residual sums and average pooling split relevance by contribution, ReLUs
    pass it, max pooling gives it to the winner. The epsilon (eps -> 0), alpha-beta, z^B
    and flat rules conserve relevance up to what the biases absorb; gamma and epsilon
    (eps > 0) do not exactly.

    Conventions: ``composite`` (default ``"epsilon_gamma_box"``) assigns rules by layer
    as zennit does: ``"epsilon_gamma_box"``: z^B for the first convolution, gamma (0.25)
    for every other convolution, epsilon (1e-6) for dense layers;
    ``"epsilon_plus_flat"``: flat for the first layer, alpha1_beta0 (z+) for
    convolutions, epsilon for dense layers; also ``"epsilon_plus"``,
    ``"epsilon_alpha2_beta1"``, ``"epsilon_alpha2_beta1_flat"``. ``rule`` instead gives
    every layer the same rule. "The first layer" is every layer that reads the model
    input (through elementwise operations with constants such as the model's
    normalisation). The input domain for z^B is [``low``, ``high``] = [0, 1] in pixel
    space, carried through the model's own normalisation. The sum of the map is the
    score minus what biases and stabilisers absorb (zennit returns the same map when
    given ``output * one_hot`` as the output relevance).

    Args:
        model: a network of convolutions, dense layers, BatchNorm after them, ReLU-like
            activations, residual sums, pooling and reshaping; run in eval mode, left
            unchanged.
        x: float images (N, C, H, W) in [``low``, ``high``].
        target: class index, one index per image, or a callable ``output -> (N,)``
            scores.
        composite: a key of :data:`COMPOSITES` (default ``"epsilon_gamma_box"`` when
            ``rule`` is None).
        rule: one of :data:`RULES` for every layer (instead of a composite).
        first_rule: a rule for the layers that read the input, overriding the
            composite's.
        epsilon: the epsilon rule's stabiliser (zennit's default 1e-6).
        gamma: the gamma rule's weight of positive contributions (zennit's default
            0.25).
        stabilizer: the other rules' stabiliser (1e-6).
        low, high: the bounds of the input domain (numbers or tensors broadcastable to
            ``x``).
        reduce: ``None`` keeps (N, C, H, W); a :func:`reduce_channels` name gives
            (N, H, W).

    Returns:
        (N, C, H, W) signed relevance (or (N, H, W) with ``reduce``), not normalised.

    Raises:
        ValueError: bad options; an operation LRP cannot handle (named with its module);
            a BatchNorm that does not follow a layer; a score that does not depend on
            ``x``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> lrp(
        ...     net, torch.rand(2, 3, 8, 8), target=0, composite="epsilon_plus_flat"
        ... ).shape
        torch.Size([2, 3, 8, 8])
    """
    relevance = _propagate(
        model,
        x,
        target,
        composite=composite,
        rule=rule,
        first_rule=first_rule,
        epsilon=epsilon,
        gamma=gamma,
        stabilizer=stabilizer,
        low=low,
        high=high,
        trace=None,
    )
    return relevance if reduce is None else reduce_channels(relevance, reduce)


def relevance_by_layer(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    **options: Any,
) -> tuple[torch.Tensor, list[LayerRelevance]]:
    """:func:`lrp` (same options, no ``reduce``) and the relevance each step received
    and passed on.

    Returns:
        The (N, C, H, W) relevance and one :class:`LayerRelevance` per step (layer,
        folded BatchNorm included; residual sum; average pooling), in the order of the
        backward pass, with the summed relevance arriving from above and leaving below,
        one value per image. Conservation at a step: ``relevance_in`` equals
        ``relevance_out``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.ReLU(),
        ...                     nn.Linear(3, 2, bias=False))
        >>> _, steps = relevance_by_layer(
        ...     net, torch.rand(1, 1, 2, 2), 0, rule="epsilon"
        ... )
        >>> [s.name for s in steps]
        ['3', '1']
    """
    known = {
        "composite",
        "rule",
        "first_rule",
        "epsilon",
        "gamma",
        "stabilizer",
        "low",
        "high",
    }
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"relevance_by_layer: unknown option(s) {', '.join(unknown)}")
    defaults = dict(
        composite=None,
        rule=None,
        first_rule=None,
        epsilon=1e-6,
        gamma=0.25,
        stabilizer=1e-6,
        low=0.0,
        high=1.0,
    )
    trace: list[LayerRelevance] = []
    relevance = _propagate(model, x, target, **{**defaults, **options}, trace=trace)
    return relevance, trace
