"""DeepLIFT with the rescale rule (Shrikumar, Greenside and Kundaje, 2017), as a
modified gradient.

Each ReLU call ``a = max(z, 0)`` of the forward pass of the input is replaced, through a
``torch.overrides.TorchFunctionMode``, by an ``autograd.Function`` whose backward
multiplies the signal from above by the rescale multiplier
``m = (max(z, 0) - max(z0, 0)) / (z - z0)``, where ``z0`` is the same ReLU's input in a
forward pass of the reference image (the gradient ``[z > 0]`` where
``|z - z0| <= 1e-10``, as captum). Linear operations (convolutions, linear layers,
average pooling, BatchNorm in eval mode, additions) keep their gradient, which is their
exact multiplier. The ReLU calls are matched between the two passes by their order.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ._core import (
    TargetLike,
    as_target,
    check_channels,
    check_input,
    model_guard,
    select_scores,
)
from .integrated_gradients import completeness_gap, path_baseline
from .normalize import reduce_channels

__all__ = ["deeplift", "DeepLiftWarning", "EPS"]

#: Below this difference ``|z - z0|`` a ReLU passes its gradient instead of the ratio
#: (captum's eps).
EPS = 1e-10


class DeepLiftWarning(UserWarning):
    """The model uses an operation the rescale rule does not handle, so
    summation-to-delta fails."""


_RELU = {F.relu, torch.relu, torch.Tensor.relu}
_RELU_INPLACE = {torch.relu_, torch.Tensor.relu_}
_MAX_POOL = {
    F.max_pool1d: "max_pool1d",
    F.max_pool2d: "max_pool2d",
    F.max_pool3d: "max_pool3d",
    F.adaptive_max_pool1d: "adaptive_max_pool1d",
    F.adaptive_max_pool2d: "adaptive_max_pool2d",
    F.adaptive_max_pool3d: "adaptive_max_pool3d",
    torch.max_pool1d: "max_pool1d",
    torch.max_pool2d: "max_pool2d",
    torch.max_pool3d: "max_pool3d",
}
_OTHER = {
    F.relu6: "relu6",
    F.hardtanh: "hardtanh",
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
    torch.sigmoid: "sigmoid",
    torch.Tensor.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    torch.tanh: "tanh",
    torch.Tensor.tanh: "tanh",
    F.tanh: "tanh",
    F.softmax: "softmax",
    torch.softmax: "softmax",
    torch.Tensor.softmax: "softmax",
    F.log_softmax: "log_softmax",
    torch.Tensor.log_softmax: "log_softmax",
}


def _multiplier(
    z: torch.Tensor, out: torch.Tensor, z0: torch.Tensor, out0: torch.Tensor
) -> torch.Tensor:
    """The rescale multiplier ``(out - out0) / (z - z0)``, the gradient ``[z > 0]``
    where ``|z - z0| <= EPS``.

    ``out = relu(z)`` and ``out0 = relu(z0)``; the ratio is computed everywhere (inf or
    NaN where ``z == z0``) and replaced where the difference is too small.
    """
    dz = z - z0
    ratio = (out - out0).div_(dz)
    return torch.where(dz.abs_() > EPS, ratio, (z > 0).to(z.dtype))


class _RescaleReLU(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, z: torch.Tensor, z0: torch.Tensor, out0: torch.Tensor
    ) -> torch.Tensor:
        out = z.clamp(min=0)
        ctx.save_for_backward(z, out, z0, out0)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        z, out, z0, out0 = ctx.saved_tensors
        return grad * _multiplier(z, out, z0, out0), None, None


class _RescaleReLUInplace(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, z: torch.Tensor, z0: torch.Tensor, out0: torch.Tensor
    ) -> torch.Tensor:
        before = z.clone()
        z.clamp_(min=0)
        ctx.mark_dirty(z)
        ctx.save_for_backward(before, z, z0, out0)
        return z

    backward = _RescaleReLU.backward


class _DeepLiftMode(TorchFunctionMode):
    """Records the ReLU inputs (reference pass) or applies the rescale rule
    (input pass)."""

    def __init__(
        self,
        references: list[torch.Tensor] | None,
        outputs: list[torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.recording = references is None
        self.references: list[torch.Tensor] = [] if references is None else references
        self.outputs: list[torch.Tensor] = [] if outputs is None else outputs
        self.calls = 0
        self.unhandled: list[str] = []

    def _relu(self, z: torch.Tensor, inplace: bool) -> torch.Tensor:
        index = self.calls
        self.calls += 1
        if self.recording:
            self.references.append(z.detach().clone())
            out = z.clamp_(min=0) if inplace else z.clamp(min=0)
            self.outputs.append(out.detach().clone() if inplace else out.detach())
            return out
        if (
            index >= len(self.references)
            or self.references[index].shape[1:] != z.shape[1:]
        ):
            raise ValueError(
                "deeplift: the forward passes of the reference and of the input called"
                f" ReLU differently (call {index + 1}); DeepLIFT needs a model whose"
                " ReLU calls do not depend on the input"
            )
        if not (torch.is_grad_enabled() and z.requires_grad):
            return z.clamp_(min=0) if inplace else z.clamp(min=0)
        function = _RescaleReLUInplace if inplace else _RescaleReLU
        return function.apply(z, self.references[index], self.outputs[index])

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in _RELU:
            inplace = func is F.relu and bool(
                args[1] if len(args) > 1 else kwargs.get("inplace", False)
            )
            return self._relu(args[0], inplace)
        if func in _RELU_INPLACE:
            return self._relu(args[0], True)
        name = _MAX_POOL.get(func) or _OTHER.get(func)
        if name is not None and name not in self.unhandled:
            self.unhandled.append(name)
        return func(*args, **kwargs)


@contextlib.contextmanager
def _warn_unhandled(mode: _DeepLiftMode) -> Iterator[None]:
    yield
    if mode.unhandled:
        pools = [n for n in mode.unhandled if "max_pool" in n]
        note = (
            " Max pooling keeps its plain gradient here (captum's DeepLift registers a"
            " max-pool rule, but gave the same attributions in our tests)."
            if pools
            else ""
        )
        warnings.warn(
            f"deeplift: the model uses {', '.join(mode.unhandled)}, which the rescale"
            " rule here does not handle (it applies to ReLU only); gradients pass"
            " through unchanged, so summation-to-delta does not hold: check"
            f" return_gap=True.{note}",
            DeepLiftWarning,
            stacklevel=4,
        )
    if mode.calls == 0:
        warnings.warn(
            "deeplift: no ReLU ran in the forward pass, so the result is the gradient"
            " times (x - baseline)",
            DeepLiftWarning,
            stacklevel=4,
        )


def deeplift(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    baseline: str | float | torch.Tensor = "black",
    blur_sigma: float = 10.0,
    seed: int = 0,
    return_gap: bool = False,
    reduce: str | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """DeepLIFT (rescale rule): differences from a reference, propagated with
    finite-difference multipliers.

    Paper: A. Shrikumar, P. Greenside and A. Kundaje, "Learning Important Features
    Through Propagating Activation Differences" (ICML 2017).

    Formula: ``A_i(x) = (x_i - x0_i) * m_i``, where ``m`` is the gradient of the score
    with every ReLU's derivative replaced by its rescale multiplier
    ``(max(z, 0) - max(z0, 0)) / (z - z0)`` (``z``, ``z0``: its input for the image and
    for the reference ``x0``). The chain rule of these multipliers gives
    *summation-to-delta*: ``sum_i A_i = F(x) - F(x0)`` exactly (to rounding) for
    networks of linear operations and ReLUs (returned as a gap with
    ``return_gap=True``).

    Why in the "path" family: like Integrated Gradients it explains the *difference* of
    the output from a reference output, and its multiplier of each ReLU is the average
    slope between reference and input, ``int_0^1 relu'(z0 + a (z - z0)) da`` -- the path
    integral taken unit by unit. For one hidden ReLU layer it equals Integrated
    Gradients exactly; deeper, the layers' slopes are averaged separately, not along one
    path.

    Conventions (as captum's ``DeepLift`` with ``multiply_by_inputs=True``, eps 1e-10):
    ReLU calls are found wherever they are made (``nn.ReLU`` with or without
    ``inplace``, ``F.relu``, ``torch.relu``, ``Tensor.relu_``). Other nonlinearities
    (max pooling, sigmoid, tanh, softmax, ReLU6, GELU, ...) keep their plain gradient
    and raise a :class:`DeepLiftWarning`: captum has rules for some of them (a rescale
    rule for sigmoid/tanh/ELU/Softplus, and a max-pool rule that routes
    ``max(y, y0) - y0`` and ``y - max(y, y0)`` back through the input's arg-max
    positions and divides by the input difference), this implementation does not. On the
    max-pool networks of the tests captum's attributions (0.9) equal ours, and neither
    keeps summation-to-delta. Cost: a forward pass of the reference (of one image when
    the reference is the same for all, e.g. black), and one forward and backward pass of
    the batch.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: class index, one per image, or a callable ``output -> (N,)`` scores.
        baseline: the reference ``x0``: ``"black"`` (default), ``"blur"``,
            ``"uniform"``, a number or a tensor (see
            :func:`~xaisurvey.attribution.path_baseline`).
        blur_sigma: standard deviation in pixels of the ``"blur"`` reference.
        seed: seed of the ``"uniform"`` reference.
        return_gap: also return ``sum_i A_i - (F(x) - F(x0))`` per image, (N,).
        reduce: ``None`` keeps (N, C, H, W); a ``reduce_channels`` name gives (N, H, W).

    Returns:
        Attributions (N, C, H, W) (or (N, H, W)); with ``return_gap`` a tuple
        ``(attributions, gap)``.

    Raises:
        ValueError: a bad option; ReLU calls that differ between the two passes; a score
            that does not depend on x.

    Warns:
        DeepLiftWarning: an unhandled nonlinearity ran, or no ReLU at all.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3),
        ...     torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 2),
        ... )
        >>> a, gap = deeplift(net, torch.rand(2, 3, 8, 8), 1, return_gap=True)
        >>> a.shape, bool(gap.abs().max() < 1e-5)
        (torch.Size([2, 3, 8, 8]), True)
    """
    method = "deeplift"
    x = check_input(x, model, method=method)
    if not isinstance(return_gap, bool):
        raise ValueError(
            f"{method}: return_gap must be True or False, got {return_gap!r}"
        )
    target_ = as_target(target, x.shape[0], method=method)
    base = path_baseline(x, baseline, blur_sigma=blur_sigma, seed=seed, method=method)
    # One reference image when all images share it (black, uniform, a number, one
    # tensor).
    shared = base.shape[0] == 1 or base.stride(0) == 0
    reference = base[:1] if shared else base
    with model_guard(model, method=method) as handles:
        check_channels(model, x.shape[1], handles, method=method)
        recorder = _DeepLiftMode(None)
        with torch.no_grad(), recorder:
            model(reference.clone())
        mode = _DeepLiftMode(recorder.references, recorder.outputs)
        inputs = x.detach().requires_grad_(True)
        with _warn_unhandled(mode):
            with mode:
                output = model(inputs)
        scores = select_scores(output, target_, method=method, n=x.shape[0])
        if not scores.requires_grad:
            raise ValueError(
                f"{method}: the target score does not depend on the input x (no path in"
                " the graph)"
            )
        (grad,) = torch.autograd.grad(scores.sum(), inputs)
        del recorder, mode, output, scores
    # not in place: the gradient may be an expanded view
    attributions = grad * (x - base)
    result = attributions if reduce is None else reduce_channels(attributions, reduce)
    if not return_gap:
        return result
    return result, completeness_gap(
        model, x, target_, attributions, base, method=method
    )
