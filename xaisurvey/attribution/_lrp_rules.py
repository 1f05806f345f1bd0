"""The LRP rules as modified gradients, the composites, and the autograd functions that
carry them.

Every rule of a linear layer ``z = W x + b`` (a convolution or a dense layer, BatchNorm
folded in) has the form (Montavon et al. 2019, eq. for "LRP as a modified gradient")::

    R_in = x * rho(W)^T (R_out / stab(z_rho))        with z_rho = rho(W) x + rho(b)

evaluated by one transposed convolution (``rho(W)^T``) per term;
``stab(z) = z + s * sign(z)`` with ``sign(0) = +1`` (zennit's convention). The rules,
with zennit's definitions (zennit 0.5):

* ``epsilon``: ``rho(W) = W``, ``s = epsilon``;
* ``gamma``: zennit's generalised gamma rule: for outputs ``z > 0`` the positive
  contributions are boosted, ``x+ (W + g W+) + x- (W + g W-)``, for ``z < 0`` the
  negative ones, ``x+ (W + g W-) + x- (W + g W+)``; outputs exactly 0 pass nothing. For
  x >= 0 and z > 0 this is Montavon et al.'s ``rho(W) = W + g W+``;
* ``alpha1_beta0`` (zennit's ``ZPlus``) and ``alpha2_beta1``: positive contributions
  ``x+ W+ + x- W-`` (+ ``b+``) weighted by alpha, negative ones ``x+ W- + x- W+``
  (+ ``b-``) by beta;
* ``zb`` (z^B, Montavon et al. 2017): ``x W - l W+ - h W-`` for inputs bounded by
  ``l <= x <= h``;
* ``flat``: ``W = 1``, ``x = 1``, no bias: relevance spread uniformly over the receptive
  field.

Everything else in the network: ReLU-like activations and elementwise operations with
constants (the model's own input normalisation) pass relevance unchanged; sums of two
tensors (ResNet's ``out += identity``) and average pooling split relevance in proportion
to the contributions, ``R_i = x_i R / stab(sum)`` (zennit's ``Norm``); max pooling keeps
its gradient, so the winner of each window takes all (as in zennit); reshaping, slicing,
padding and concatenation move relevance with the values (their gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

__all__ = ["RULES", "COMPOSITES", "Composite", "LayerRelevance"]

#: The rules a convolution or dense layer can get.
RULES = ("epsilon", "gamma", "alpha1_beta0", "alpha2_beta1", "zb", "flat")


@dataclass(frozen=True)
class Composite:
    """Rules by layer kind, as zennit's composites assign them.

    Attributes:
        conv: the rule of every convolution.
        linear: the rule of every dense (``nn.Linear``) layer.
        first: the rule of the layer(s) that read the input (``None``: no special first
            layer).
        first_kinds: which kinds of layer the first rule applies to (zennit: the box
            rule only to a convolution, the flat rule to any linear layer).
        zennit: zennit's class of the same name.
    """

    conv: str
    linear: str
    first: str | None
    first_kinds: tuple[str, ...]
    zennit: str


#: The composites, with zennit's names and definitions (``zennit.composites``, version
#: 0.5).
COMPOSITES: dict[str, Composite] = {
    "epsilon_gamma_box": Composite(
        "gamma", "epsilon", "zb", ("conv",), "EpsilonGammaBox"
    ),
    "epsilon_plus_flat": Composite(
        "alpha1_beta0", "epsilon", "flat", ("conv", "linear"), "EpsilonPlusFlat"
    ),
    "epsilon_plus": Composite("alpha1_beta0", "epsilon", None, (), "EpsilonPlus"),
    "epsilon_alpha2_beta1": Composite(
        "alpha2_beta1", "epsilon", None, (), "EpsilonAlpha2Beta1"
    ),
    "epsilon_alpha2_beta1_flat": Composite(
        "alpha2_beta1", "epsilon", "flat", ("conv", "linear"), "EpsilonAlpha2Beta1Flat"
    ),
}


@dataclass
class LayerRelevance:
    """The relevance entering and leaving one propagation step (one row per image)."""

    name: str
    op: str
    rule: str
    relevance_out: torch.Tensor  # (N,) summed relevance arriving from above
    relevance_in: torch.Tensor  # (N,) summed relevance passed below


@dataclass
class Settings:
    """Rule parameters shared by every layer of one call."""

    epsilon: float
    gamma: float
    stabilizer: float
    trace: list[LayerRelevance] | None = None


@dataclass
class Layer:
    """A convolution or dense layer as it ran (BatchNorm folded into ``weight`` and
    ``bias``)."""

    kind: str  # "conv" or "linear"
    name: str
    rule: str
    weight: torch.Tensor
    bias: torch.Tensor | None
    # stride, padding, dilation, groups
    conv: dict[str, Any] = field(default_factory=dict)
    # z^B bounds of the layer's input (full input shape)
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None
    merged: str | None = None  # the BatchNorm folded in

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(x, weight, bias)
        return F.conv2d(x, weight, bias, **self.conv)

    def transpose(
        self, x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor
    ) -> torch.Tensor:
        """``weight^T grad``: the input gradient of the layer without bias, shaped like
        ``x``."""
        if self.kind == "linear":
            return grad @ weight
        c = self.conv
        return torch.ops.aten.convolution_backward(
            grad,
            x,
            weight,
            None,
            c["stride"],
            c["padding"],
            c["dilation"],
            False,
            [0, 0],
            c["groups"],
            [True, False, False],
        )[0]


def stabilize(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``z + eps * sign(z)`` with sign(0) = +1 (zennit's ``stabilize``)."""
    step = torch.tensor(eps, dtype=z.dtype, device=z.device)
    return z + torch.where(z >= 0, step, -step)


def divide(relevance: torch.Tensor, z: torch.Tensor, eps: float) -> torch.Tensor:
    """``relevance / stab(z)``; with ``eps = 0`` a zero denominator (no contributions)
    passes 0."""
    denominator = stabilize(z, eps)
    if eps > 0:
        return relevance / denominator
    return torch.where(denominator != 0, relevance / denominator, 0.0)


def _parts(t: torch.Tensor | None) -> tuple[Any, Any]:
    if t is None:
        return None, None
    return t.clamp(min=0), t.clamp(max=0)


def _rowsum(t: torch.Tensor) -> torch.Tensor:
    return t.detach().reshape(t.shape[0], -1).sum(1)


def _record(
    settings: Settings, name: str, op: str, rule: str, r_out: torch.Tensor, r_in: Any
) -> None:
    if settings.trace is None:
        return
    inputs = r_in if isinstance(r_in, (tuple, list)) else (r_in,)
    total = sum(_rowsum(r) for r in inputs if r is not None)
    settings.trace.append(LayerRelevance(name, op, rule, _rowsum(r_out), total))


def layer_relevance(
    layer: Layer,
    x: torch.Tensor,
    z: torch.Tensor,
    relevance: torch.Tensor,
    settings: Settings,
) -> torch.Tensor:
    """The relevance of a layer's input ``x`` from its output's by ``layer.rule``."""
    w, b, s = layer.weight, layer.bias, settings.stabilizer
    rule, t = layer.rule, layer.transpose
    if rule == "epsilon":
        return x * t(x, w, divide(relevance, z, settings.epsilon))
    if rule == "flat":
        ones, ones_w = torch.ones_like(x), torch.ones_like(w)
        return t(x, ones_w, divide(relevance, layer.forward(ones, ones_w, None), s))
    if rule == "zb":
        wp, wn = _parts(w)
        bp, bn = _parts(b)
        low, high = layer.low.to(x), layer.high.to(x)
        zb = (
            layer.forward(x, w, b)
            - layer.forward(low, wp, bp)
            - layer.forward(high, wn, bn)
        )
        g = divide(relevance, zb, s)
        return x * t(x, w, g) - low * t(x, wp, g) - high * t(x, wn, g)
    wp, wn = _parts(w)
    bp, bn = _parts(b)
    shape = (1, -1) + (1,) * (z.dim() - 2)
    bias = lambda v: 0 if v is None else v.view(shape)  # noqa: E731
    positive_input = bool((x >= 0).all())
    if rule == "gamma":
        g = settings.gamma
        if positive_input:
            # With x >= 0: z+ = f(x, W + gW+, b + gb+) = z + Q and z- = f(x, W + gW-, b
            # + gb-) = (1 + g) z - Q, Q = g (f(x, W+) + b+): one extra convolution
            # instead of two. z+ >= z > 0 where z > 0 and z- <= z < 0 where z < 0, so
            # stab() keeps z's sign. Let v = R / (|z+| + s) where z > 0 and R /
            # (|z-| + s) where z < 0 (0 where z = 0); |z+| = z + Q, |z-| = Q - (1 + g)
            # z, i.e. |z| (1 + g/2) - (g/2) z + Q in both cases. Then a = v [z > 0], c =
            # -v [z < 0], and x [(W + gW+)^T a + (W + gW-)^T c] = x [W^T (a + (1 + g) c)
            # + g W+^T (a - c)] = x [W^T u + g W+^T v], u = a + (1 + g) c.
            denominator = layer.forward(x, wp, bp).mul_(g).add_(s)
            denominator.add_(z.abs(), alpha=1 + g / 2).add_(z, alpha=-g / 2)
            v = (relevance / denominator).masked_fill_(z == 0, 0.0)
            u = torch.where(z > 0, v, v * -(1 + g))
            out = t(x, w, u)
            out.add_(t(x, wp, v), alpha=g)
            return out.mul_(x)
        xp, xn = _parts(x)
        rp, rn = w + g * wp, w + g * wn
        rbp = None if b is None else b + g * bp
        rbn = None if b is None else b + g * bn
        z_pos = layer.forward(xp, rp, rbp) + layer.forward(xn, rn, None)
        z_neg = layer.forward(xp, rn, rbn) + layer.forward(xn, rp, None)
        a = divide(relevance * (z > 0), z_pos, s)
        c = divide(relevance * (z < 0), z_neg, s)
        return xp * t(x, rp, a) + xn * t(x, rn, a) + xp * t(x, rn, c) + xn * t(x, rp, c)
    if rule in ("alpha1_beta0", "alpha2_beta1"):
        alpha, beta = (1.0, 0.0) if rule == "alpha1_beta0" else (2.0, 1.0)
        if positive_input:
            p = layer.forward(x, wp, None)
            u = divide(relevance, p + bias(bp), s)
            if beta == 0:
                return x * t(x, wp, u)
            v = divide(relevance, z - bias(b) - p + bias(bn), s)
            # x [alpha W+^T u - beta W-^T v], W- = W - W+
            return x * (t(x, wp, alpha * u + beta * v) - beta * t(x, w, v))
        xp, xn = _parts(x)
        u = divide(
            relevance, layer.forward(xp, wp, bp) + layer.forward(xn, wn, None), s
        )
        out = alpha * (xp * t(x, wp, u) + xn * t(x, wn, u))
        if beta == 0:
            return out
        v = divide(
            relevance, layer.forward(xp, wn, bn) + layer.forward(xn, wp, None), s
        )
        return out - beta * (xp * t(x, wn, v) + xn * t(x, wp, v))
    raise ValueError(
        f"lrp: unknown rule {rule!r}"
    )  # pragma: no cover (checked by the caller)


class LayerFunction(torch.autograd.Function):
    """Forward: the layer's output as computed. Backward: the layer's rule, not its
    gradient."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        z: torch.Tensor,
        layer: Layer,  # type: ignore[override]
        settings: Settings,
    ):
        ctx.save_for_backward(x, z)
        ctx.layer, ctx.settings = layer, settings
        return z

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):  # type: ignore[override]
        x, z = ctx.saved_tensors
        layer, settings = ctx.layer, ctx.settings
        r_in = layer_relevance(layer, x, z, relevance, settings)
        _record(settings, layer.name, layer.kind, layer.rule, relevance, r_in)
        return r_in, None, None, None


class PassFunction(torch.autograd.Function):
    """Forward: an elementwise function of one tensor. Backward: relevance passes
    unchanged."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,  # type: ignore[override]
        fn: Callable[[torch.Tensor], torch.Tensor],
    ):
        return fn(x)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):  # type: ignore[override]
        return relevance, None


class SumFunction(torch.autograd.Function):
    """``a + sign * b`` of two tensors; relevance split by contribution,
    ``a R / stab(a + b)``."""

    @staticmethod
    def forward(
        ctx,
        a: torch.Tensor,
        b: torch.Tensor,  # type: ignore[override]
        sign: float,
        name: str,
        settings: Settings,
    ):
        out = a + b if sign > 0 else a - b
        ctx.save_for_backward(a, b, out)
        ctx.sign, ctx.name, ctx.settings = sign, name, settings
        return out

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):  # type: ignore[override]
        a, b, out = ctx.saved_tensors
        share = divide(relevance, out, ctx.settings.stabilizer)
        r_a = (a * share).sum_to_size(a.shape)
        r_b = (ctx.sign * b * share).sum_to_size(b.shape)
        _record(ctx.settings, ctx.name, "sum", "norm", relevance, (r_a, r_b))
        return r_a, r_b, None, None, None


class PoolFunction(torch.autograd.Function):
    """A linear pooling (average, mean, sum); relevance split by contribution (zennit's
    ``Norm``).
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,  # type: ignore[override]
        fn: Callable[[torch.Tensor], torch.Tensor],
        name: str,
        settings: Settings,
    ):
        out = fn(x)
        ctx.save_for_backward(x, out)
        ctx.fn, ctx.name, ctx.settings = fn, name, settings
        return out

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):  # type: ignore[override]
        x, out = ctx.saved_tensors
        share = divide(relevance, out, ctx.settings.stabilizer)
        with torch.enable_grad():
            probe = x.detach().requires_grad_(True)
            (spread,) = torch.autograd.grad(ctx.fn(probe), probe, share)
        r_in = x * spread
        _record(ctx.settings, ctx.name, "pool", "norm", relevance, r_in)
        return r_in, None, None, None
