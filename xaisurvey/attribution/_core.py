"""Shared machinery of the attribution methods: input checks, targets, layers and the
model guard.

Every method in :mod:`xaisurvey.attribution` follows the same steps:

1. :func:`check_input` validates ``x`` (a float batch (N, C, H, W)) and moves it to the
   model's device and dtype;
2. :func:`as_target` turns ``target`` (an int, one int per image, NumPy integers, or a
   callable on the output) into a :class:`Target`, checking the count against N;
3. :func:`~xaisurvey.guard.model_guard` puts the model in eval mode for the call and
   restores it afterwards (per-module training flags, ``requires_grad``, ``.grad``,
   buffers) and removes every hook registered through it, even when an error is raised;
   :func:`check_channels` registers the check that the first convolution that *runs*
   receives x's channel count;
4. :func:`select_scores` picks one scalar per image from the model's output; the methods
   differentiate the *sum* of these scalars, which gives each image its own gradient
   because a model in eval mode treats the images of a batch independently. (A BatchNorm
   without running statistics breaks this independence; the guard warns about it.)
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..guard import model_guard

__all__ = [
    "TargetLike",
    "Target",
    "check_input",
    "check_not_parallel",
    "check_channels",
    "as_target",
    "select_scores",
    "model_guard",
    "resolve_layer",
    "LayerCapture",
    "capture_layer",
    "upsample_maps",
    "check_choice",
    "check_positive_int",
    "check_bool",
    "input_gradient",
    "ZeroMapWarning",
    "warn_zero_maps",
    "batched_scores",
]

#: What a method accepts as ``target``: a class index for every image (int or NumPy
#: integer), one index per image (a list, tuple, 1-D integer tensor or NumPy array of
#: length N), or a callable mapping the model output (whatever the model returns: a
#: tensor, tuple or dict) to one score per image (shape (N,)), e.g.
#: ``lambda out: out[:, 0]`` for a regression output.
TargetLike = Union[
    int, Sequence[int], torch.Tensor, np.ndarray, Callable[[Any], torch.Tensor]
]

_UPSAMPLE_MODES = ("bilinear", "nearest", None)


def _model_device_dtype(
    model: nn.Module,
) -> tuple[torch.device | None, torch.dtype | None]:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return None, None


def check_choice(
    value: object, choices: Sequence[object], name: str, method: str
) -> None:
    """Raise a one-line ``ValueError`` unless ``value`` is one of ``choices``."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{method}: {name} must be one of {shown}, got {value!r}")


def check_positive_int(
    value: object, name: str, method: str, *, minimum: int = 1
) -> int:
    """``value`` as an int >= ``minimum`` (NumPy integers accepted), else a one-line
    error."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer))
        or int(value) < minimum
    ):
        raise ValueError(f"{method}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


_PARALLEL_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def check_not_parallel(model: nn.Module, *, method: str = "attribution") -> None:
    """Refuse a model that is (or contains) ``nn.DataParallel`` /
    ``DistributedDataParallel``.

    Their replicas run in other threads (DataParallel) or processes (DDP), where the
    backward rules of the modified-gradient methods (a ``TorchFunctionMode`` active in
    the calling thread only) and the forward hooks that capture a layer do not reach:
    the result would silently mix rules or miss the layer. Explain ``model.module``, the
    wrapped network.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{method}: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    for name, module in model.named_modules():
        if isinstance(module, _PARALLEL_WRAPPERS):
            where = "the model is" if not name else f"its submodule {name!r} is"
            raise TypeError(
                f"{method}: {where} wrapped in {type(module).__name__}, whose replicas"
                " the method's hooks and backward rules do not reach; pass the wrapped"
                " network (.module) instead"
            )


def _all_finite(x: torch.Tensor) -> bool:
    """``torch.isfinite(x).all()``, one pass instead of four in the usual case.

    A NaN or an infinity makes the sum NaN or infinite; a finite sum proves every entry
    finite. Only a non-finite sum (a bad value, or finite values that overflow when
    added) needs the element-wise test. ``isfinite`` allocates three temporaries of x's
    size; the sum allocates none (on a batch of 16 images of 224 px: 0.5 ms instead of
    45 ms on one thread).
    """
    if bool(torch.isfinite(x.detach().sum())):
        return True
    return bool(torch.isfinite(x).all())


def check_bool(value: object, name: str, method: str) -> bool:
    """``value`` if it is a bool (NumPy bools accepted), else a one-line ``TypeError``.

    A string such as ``"no"`` is truthy: accepting it would silently do the opposite of
    what was meant.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{method}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_input(
    x: torch.Tensor, model: nn.Module, *, method: str = "attribution"
) -> torch.Tensor:
    """Validate a batch of images and move it to the model's device and dtype.

    Args:
        x: float tensor (N, C, H, W) with N >= 1 and finite values.
        model: the network; its first floating-point parameter fixes the device and
            dtype.
        method: the caller's name, used in error messages.

    Returns:
        ``x`` on the model's device and dtype (the same tensor object when nothing
        changes; the caller must not modify it in place). A tensor made under
        ``torch.inference_mode()`` is copied into an ordinary one, so gradients can flow
        from it.

    Raises:
        TypeError: ``model`` is not a module, or is wrapped in ``nn.DataParallel`` /
            ``DistributedDataParallel`` (see :func:`check_not_parallel`); ``x`` is not a
            tensor or not floating point.
        ValueError: wrong rank, empty batch, empty image, NaN or infinite values.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{method}: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    check_not_parallel(model, method=method)
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{method}: x must be a torch.Tensor of shape (N, C, H, W), got"
            f" {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{method}: x must be a floating-point tensor (images in [0, 1]), got dtype"
            f" {x.dtype}; convert it with x.float() (and divide uint8 images by 255)"
        )
    if x.dim() != 4:
        hint = " (a single image? use x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(
            f"{method}: x must have 4 dimensions (N, C, H, W), got shape"
            f" {tuple(x.shape)}{hint}"
        )
    if x.shape[0] == 0:
        raise ValueError(
            f"{method}: x is an empty batch (N = 0); pass at least one image"
        )
    if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{method}: x has an empty dimension, shape {tuple(x.shape)}")
    if not _all_finite(x):
        raise ValueError(f"{method}: x contains NaN or infinite values")
    if x.is_inference():
        x = x.clone()  # outside inference mode the clone is an ordinary tensor
    device, dtype = _model_device_dtype(model)
    if device is not None:
        x = x.to(device=device, dtype=dtype)
    return x


def check_channels(
    model: nn.Module, channels: int, handles: list, *, method: str = "attribution"
) -> None:
    """Check, during the forward pass, that the first ``nn.Conv2d`` that runs gets
    ``channels``.

    A static check (the first convolution *registered*) rejects valid models whose
    modules are registered in another order than they run; this one looks at the
    convolution that actually runs first and turns PyTorch's shape error into one line
    that names the layer. The hooks are appended to ``handles`` (the guard removes
    them).
    """
    seen = {"done": False}
    names = {module: name for name, module in model.named_modules()}

    def pre_hook(module: nn.Module, inputs: tuple) -> None:
        if seen["done"]:
            return
        seen["done"] = True
        got = (
            inputs[0].shape[1]
            if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() >= 2
            else None
        )
        if got is not None and got != module.in_channels:
            where = (
                "the first convolution that runs,"
                f" {names.get(module) or type(module).__name__!r},"
            )
            received = "" if got == channels else f" and received {got}"
            raise ValueError(
                f"{method}: x has {channels} channels but {where} expects"
                f" {module.in_channels}{received}"
            )

    for module in names:
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_pre_hook(pre_hook))


@dataclass(frozen=True)
class Target:
    """A validated target: either class ``indices`` (N,) or a ``score_fn`` on the model
    output."""

    indices: torch.Tensor | None = None
    score_fn: Callable[[Any], torch.Tensor] | None = None

    @property
    def is_callable(self) -> bool:
        return self.score_fn is not None

    def repeat(self, times: int) -> "Target":
        """The target for a batch in which every image is repeated ``times`` times
        (image-major)."""
        if self.indices is None:
            return self
        return Target(indices=self.indices.repeat_interleave(times))

    def rows(self, start: int, stop: int) -> "Target":
        """The target of rows ``start:stop`` of the batch."""
        return (
            self if self.indices is None else Target(indices=self.indices[start:stop])
        )


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def as_target(target: TargetLike, n: int, *, method: str = "attribution") -> Target:
    """Turn ``target`` into a :class:`Target` for a batch of ``n`` images.

    An int (or NumPy integer) applies to every image; a list, tuple, 1-D integer tensor
    or NumPy array gives one index per image and must have exactly ``n`` entries (a
    mismatch is an error, never a silent truncation); a callable is applied to the model
    output and must return ``n`` scores. Negative indices are rejected (they would
    silently count from the end). The upper bound is checked against the model output in
    :func:`select_scores`.
    """
    if isinstance(target, Target):
        return target
    if callable(target) and not isinstance(target, (torch.Tensor, np.ndarray)):
        return Target(score_fn=target)
    if isinstance(target, (bool, np.bool_)):
        raise TypeError(
            f"{method}: target must be an int, a sequence of ints, a tensor or a"
            " callable, got a bool"
        )
    if target is None:
        raise TypeError(
            f"{method}: target is required (a class index, one per image, or a callable"
            " on the output)"
        )
    if _is_int(target):
        indices = torch.full((n,), int(target), dtype=torch.long)
    elif isinstance(target, np.ndarray):
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(
                f"{method}: a target array must hold integer class indices, got dtype"
                f" {target.dtype}"
            )
        if target.ndim > 1:
            raise ValueError(
                f"{method}: a target array must be 0-D or 1-D (one index per image),"
                f" got shape {target.shape}"
            )
        indices = torch.as_tensor(target.astype(np.int64).reshape(-1))
        if target.ndim == 0:
            indices = indices.expand(n).clone()
    elif isinstance(target, torch.Tensor):
        if (
            target.is_floating_point()
            or target.is_complex()
            or target.dtype == torch.bool
        ):
            raise TypeError(
                f"{method}: a target tensor must hold integer class indices, got dtype"
                f" {target.dtype}"
            )
        if target.dim() == 0:
            indices = target.reshape(1).expand(n).long().cpu()
        elif target.dim() == 1:
            indices = target.long().cpu()
        else:
            raise ValueError(
                f"{method}: a target tensor must be 0-D or 1-D (one index per image),"
                f" got shape {tuple(target.shape)}"
            )
    elif isinstance(target, (list, tuple)):
        if not all(_is_int(t) for t in target):
            raise TypeError(f"{method}: a target list must hold ints, got {target!r}")
        indices = torch.tensor([int(t) for t in target], dtype=torch.long)
    else:
        raise TypeError(
            f"{method}: target must be an int, a sequence of ints, a tensor or a"
            f" callable, got {type(target).__name__}"
        )
    if indices.numel() != n:
        raise ValueError(
            f"{method}: got {indices.numel()} targets for {n} images; pass one target"
            " per image or a single int"
        )
    if n and int(indices.min()) < 0:
        raise ValueError(
            f"{method}: target {int(indices.min())} is out of range: class indices must"
            " be >= 0"
        )
    return Target(indices=indices)


def select_scores(
    output: Any, target: Target, *, method: str = "attribution", n: int | None = None
) -> torch.Tensor:
    """One score per image, shape (N,), from the model ``output`` and a validated
    ``target``.

    With class indices the output must be a tensor (N, K) and every index < K. A
    callable receives the output as the model returned it (a tensor, a tuple, a dict,
    ...) and must return a tensor with N elements (shape (N,) or (N, 1)); ``n`` is the
    batch size (default: the output's first dimension).
    """
    if target.score_fn is not None:
        scores = target.score_fn(output)
        if n is None:
            n = (
                output.shape[0]
                if isinstance(output, torch.Tensor) and output.dim()
                else 0
            )
        if not isinstance(scores, torch.Tensor):
            raise TypeError(
                f"{method}: the target callable must return a tensor, got"
                f" {type(scores).__name__}"
            )
        if scores.dim() == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.dim() != 1 or scores.shape[0] != n:
            raise ValueError(
                f"{method}: the target callable must return one score per image, shape"
                f" ({n},), got shape {tuple(scores.shape)}"
            )
        return scores
    assert target.indices is not None
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"{method}: the model returns a {type(output).__name__}, not a tensor of"
            " class scores; pass a callable target that picks one score per image,"
            " e.g. lambda out: out[0][:, c]"
        )
    if output.dim() != 2:
        raise ValueError(
            f"{method}: class-index targets need an output of shape (N, classes), got"
            f" {tuple(output.shape)}; pass a callable target for other outputs"
        )
    num_classes = output.shape[1]
    top = int(target.indices.max())
    if top >= num_classes:
        raise ValueError(
            f"{method}: target {top} is out of range for a model with {num_classes}"
            " outputs"
        )
    return output.gather(1, target.indices.to(output.device).view(-1, 1))[:, 0]


def resolve_layer(
    model: nn.Module, layer: nn.Module | str, *, method: str = "attribution"
) -> tuple[str, nn.Module]:
    """Find ``layer`` (a module of ``model`` or its dotted name, e.g. ``"layer4"`` or
    ``"features.10"``).

    Returns:
        ``(dotted_name, module)``.

    Raises:
        ValueError: the name or the module is not part of ``model``.
        TypeError: ``layer`` is neither a string nor a module.
    """
    if isinstance(layer, str):
        for name, module in model.named_modules():
            if name == layer:
                return name, module
        names = [n for n, _ in model.named_modules() if n]
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise ValueError(
            f"{method}: the model has no layer named {layer!r}; its layers include:"
            f" {shown}"
        )
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise ValueError(
            f"{method}: the layer {type(layer).__name__} passed as layer= is not a"
            " module of this model"
        )
    raise TypeError(
        f"{method}: layer must be an nn.Module of the model or its dotted name, got"
        f" {type(layer).__name__}"
    )


@dataclass
class LayerCapture:
    """What :func:`capture_layer` records: the layer's output of the last forward pass.

    ``activation`` is the tensor that gradients can be taken with respect to
    (it requires grad). The module's output seen by the rest of the network is a clone
    of it, so an in-place operation after the layer (``nn.ReLU(inplace=True)``) cannot
    overwrite the captured values.
    """

    name: str
    activation: torch.Tensor | None = None
    calls: int = 0
    on_capture: list = field(default_factory=list)

    def spatial(self, method: str = "attribution") -> torch.Tensor:
        """The captured activation, checked to be a spatial map (N, K, h, w)."""
        if self.activation is None:
            raise ValueError(
                f"{method}: layer {self.name!r} was not called during the forward pass"
            )
        if self.calls > 1:
            raise ValueError(
                f"{method}: layer {self.name!r} was called {self.calls} times in one"
                " forward pass; pick a layer that runs once"
            )
        if self.activation.dim() != 4:
            raise ValueError(
                f"{method}: layer {self.name!r} produces an output of shape"
                f" {tuple(self.activation.shape)}, not a spatial map (N, K, h, w); pick"
                " a convolutional layer or block"
            )
        return self.activation


def capture_layer(module: nn.Module, name: str, handles: list) -> LayerCapture:
    """Register a forward hook on ``module`` that records its output as a grad-ready
    tensor.

    The hook handle is appended to ``handles`` (the list from :func:`model_guard`, which
    removes it). Works when nothing upstream requires grad: the output is then detached
    and made a leaf that requires grad, so the backward pass stops at the layer.
    """
    capture = LayerCapture(name=name)

    def hook(_module: nn.Module, _inputs: tuple, output: object) -> object:
        capture.calls += 1
        if not isinstance(output, torch.Tensor):
            # reported by spatial() as "not a spatial map"
            capture.activation = torch.empty(0)
            return None
        activation = (
            output if output.requires_grad else output.detach().requires_grad_(True)
        )
        capture.activation = activation
        for callback in capture.on_capture:
            callback()
        # The network continues with a clone, so in-place ops after the layer leave ours
        # intact.
        return activation.clone()

    handles.append(module.register_forward_hook(hook))
    return capture


def upsample_maps(
    maps: torch.Tensor,
    size: tuple[int, int],
    mode: str | None,
    *,
    method: str = "attribution",
) -> torch.Tensor:
    """Upsample (N, h, w) maps to ``size`` = (H, W).

    ``mode="bilinear"`` uses ``align_corners=False`` (pixel centres, as
    ``F.interpolate``, captum's ``LayerAttribution.interpolate`` and OpenCV's
    ``resize``); ``"nearest"`` copies each cell into a block; ``None`` returns the maps
    at layer resolution.
    """
    if mode not in _UPSAMPLE_MODES:
        raise ValueError(
            f"{method}: upsample must be one of 'bilinear', 'nearest' or None, got"
            f" {mode!r}"
        )
    if mode is None or tuple(maps.shape[-2:]) == tuple(size):
        return maps
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(maps.unsqueeze(1), size=size, mode=mode, **kwargs)[:, 0]


def input_gradient(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    method: str,
    forward_context: Callable[[], Any] | None = None,
) -> torch.Tensor:
    """``d S_n / d x_n`` of every image n, (N, C, H, W): one forward, one backward pass.

    ``x`` and ``target`` must already be checked; the function takes its own guard.
    ``forward_context`` (a context-manager factory) wraps the forward pass only, e.g.
    the ReLU rule of Guided Backpropagation.

    Raises:
        ValueError: the score does not depend on the input at all (no graph path; a zero
            gradient, by contrast, is returned as zeros).
    """
    with model_guard(model, method=method) as handles:
        check_channels(model, x.shape[1], handles, method=method)
        inputs = x.detach().requires_grad_(True)
        with (
            forward_context()
            if forward_context is not None
            else contextlib.nullcontext()
        ):
            output = model(inputs)
        scores = select_scores(output, target, method=method, n=x.shape[0])
        grad = None
        if scores.requires_grad:
            (grad,) = torch.autograd.grad(scores.sum(), inputs, allow_unused=True)
    if grad is None:
        raise ValueError(
            f"{method}: the target score does not depend on the input x (no path in the"
            " graph)"
        )
    return grad


def batched_scores(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target,
    *,
    batch_size: int,
    method: str,
) -> torch.Tensor:
    """Target scores (M,) of ``inputs`` (M, C, H, W), ``batch_size`` rows per forward
    pass, no gradients.

    ``target`` holds one index per row (or a callable). The model must be guarded by the
    caller.
    """
    scores = torch.empty(inputs.shape[0], dtype=inputs.dtype, device=inputs.device)
    with torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            stop = min(start + batch_size, inputs.shape[0])
            out = model(inputs[start:stop])
            scores[start:stop] = select_scores(
                out, target.rows(start, stop), method=method, n=stop - start
            )
    return scores


class ZeroMapWarning(UserWarning):
    """A method returned a map that is zero everywhere for some image (a real answer,
    said aloud)."""


def warn_zero_maps(maps: torch.Tensor, *, method: str, why: str) -> torch.Tensor:
    """Warn (one line) when any image's map is exactly zero everywhere; return ``maps``
    unchanged.

    An all-zero map is a correct answer in some cases (a score that no perturbation
    changes, no channel that raises it), but it looks like "nothing matters here" on
    screen; the warning says which images and why, so it is never mistaken for a finding
    about the image.
    """
    flat = (maps.reshape(maps.shape[0], -1) == 0).all(dim=1)
    if bool(flat.any()):
        images = flat.nonzero()[:, 0].tolist()
        shown = ", ".join(map(str, images[:8])) + (", ..." if len(images) > 8 else "")
        warnings.warn(
            f"{method}: the map of image(s) {shown} is zero everywhere: {why}",
            ZeroMapWarning,
            stacklevel=3,
        )
    return maps
