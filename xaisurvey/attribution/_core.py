"""Shared machinery of the attribution methods: input checks, targets, layers and the model guard.

Every method in :mod:`xaisurvey.attribution` follows the same steps:

1. :func:`check_input` validates ``x`` (a float batch (N, C, H, W)) and moves it to the model's
   device and dtype;
2. :func:`as_target` turns ``target`` (an int, one int per image, or a callable on the output)
   into a :class:`Target`, checking the count against N;
3. :func:`model_guard` puts the model in eval mode for the call and restores it afterwards
   (training flags, ``requires_grad``, ``.grad``) and removes every hook registered through it,
   even when an error is raised;
4. :func:`select_scores` picks one scalar per image from the model's output; the methods
   differentiate the *sum* of these scalars, which gives each image its own gradient because a
   model in eval mode treats the images of a batch independently.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "TargetLike",
    "Target",
    "check_input",
    "as_target",
    "select_scores",
    "model_guard",
    "resolve_layer",
    "LayerCapture",
    "capture_layer",
    "upsample_maps",
    "first_conv_channels",
]

#: What a method accepts as ``target``: a class index for every image, one index per image
#: (a list or a 1-D integer tensor of length N), or a callable mapping the model output to one
#: score per image (shape (N,)), e.g. ``lambda out: out[:, 0]`` for a regression output.
TargetLike = Union[int, Sequence[int], torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]

_UPSAMPLE_MODES = ("bilinear", "nearest", None)


def first_conv_channels(model: nn.Module) -> int | None:
    """The input channels of the first ``nn.Conv2d`` registered in ``model``, or ``None``."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def _model_device_dtype(model: nn.Module) -> tuple[torch.device | None, torch.dtype | None]:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return None, None


def check_input(x: torch.Tensor, model: nn.Module, *, method: str = "attribution") -> torch.Tensor:
    """Validate a batch of images and move it to the model's device and dtype.

    Args:
        x: float tensor (N, C, H, W) with N >= 1.
        model: the network; its first ``nn.Conv2d`` (if any) fixes the expected channel count and
            its first floating-point parameter the device and dtype.
        method: the caller's name, used in error messages.

    Returns:
        ``x`` on the model's device and dtype (the same tensor object when nothing changes; the
        caller must not modify it in place).

    Raises:
        TypeError: ``x`` is not a tensor or not floating point.
        ValueError: wrong rank, empty batch, empty image or wrong channel count.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{method}: x must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{method}: x must be a floating-point tensor (images in [0, 1]), got dtype {x.dtype}; "
            "convert it with x.float() (and divide uint8 images by 255)"
        )
    if x.dim() != 4:
        hint = " (a single image? use x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(f"{method}: x must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{method}: x is an empty batch (N = 0); pass at least one image")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{method}: x has an empty image, shape {tuple(x.shape)}")
    channels = first_conv_channels(model)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{method}: x has {x.shape[1]} channels but the model's first convolution expects {channels}"
        )
    device, dtype = _model_device_dtype(model)
    if device is not None:
        x = x.to(device=device, dtype=dtype)
    return x


@dataclass(frozen=True)
class Target:
    """A validated target: either class ``indices`` (N,) or a ``score_fn`` on the model output."""

    indices: torch.Tensor | None = None
    score_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def is_callable(self) -> bool:
        return self.score_fn is not None


def as_target(target: TargetLike, n: int, *, method: str = "attribution") -> Target:
    """Turn ``target`` into a :class:`Target` for a batch of ``n`` images.

    An int applies to every image; a list, tuple or 1-D integer tensor gives one index per image
    and must have exactly ``n`` entries (a mismatch is an error, never a silent truncation); a
    callable is applied to the model output and must return ``n`` scores. Negative indices are
    rejected (they would silently count from the end). The upper bound is checked against the
    model output in :func:`select_scores`.
    """
    if callable(target) and not isinstance(target, torch.Tensor):
        return Target(score_fn=target)
    if isinstance(target, bool):
        raise TypeError(f"{method}: target must be an int, a sequence of ints, a tensor or a callable, got a bool")
    if isinstance(target, int):
        indices = torch.full((n,), target, dtype=torch.long)
    elif isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(f"{method}: a target tensor must hold integer class indices, got dtype {target.dtype}")
        if target.dim() == 0:
            indices = target.reshape(1).expand(n).long().cpu()
        elif target.dim() == 1:
            indices = target.long().cpu()
        else:
            raise ValueError(f"{method}: a target tensor must be 0-D or 1-D (one index per image), got shape {tuple(target.shape)}")
    elif isinstance(target, (list, tuple)):
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in target):
            raise TypeError(f"{method}: a target list must hold ints, got {target!r}")
        indices = torch.tensor(list(target), dtype=torch.long)
    else:
        raise TypeError(
            f"{method}: target must be an int, a sequence of ints, a tensor or a callable, got {type(target).__name__}"
        )
    if indices.numel() != n:
        raise ValueError(f"{method}: got {indices.numel()} targets for {n} images; pass one target per image or a single int")
    if n and int(indices.min()) < 0:
        raise ValueError(f"{method}: target {int(indices.min())} is out of range: class indices must be >= 0")
    return Target(indices=indices)


def select_scores(output: torch.Tensor, target: Target, *, method: str = "attribution") -> torch.Tensor:
    """One score per image, shape (N,), from the model ``output`` and a validated ``target``.

    With class indices the output must be (N, K) and every index < K; a callable must return a
    tensor with N elements (shape (N,) or (N, 1)).
    """
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"{method}: the model must return a tensor, got {type(output).__name__}")
    n = output.shape[0] if output.dim() else 0
    if target.score_fn is not None:
        scores = target.score_fn(output)
        if not isinstance(scores, torch.Tensor):
            raise TypeError(f"{method}: the target callable must return a tensor, got {type(scores).__name__}")
        if scores.dim() == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.dim() != 1 or scores.shape[0] != n:
            raise ValueError(
                f"{method}: the target callable must return one score per image, shape ({n},), "
                f"got shape {tuple(scores.shape)}"
            )
        return scores
    assert target.indices is not None
    if output.dim() != 2:
        raise ValueError(
            f"{method}: class-index targets need an output of shape (N, classes), got {tuple(output.shape)}; "
            "pass a callable target for other outputs"
        )
    num_classes = output.shape[1]
    top = int(target.indices.max())
    if top >= num_classes:
        raise ValueError(f"{method}: target {top} is out of range for a model with {num_classes} outputs")
    return output.gather(1, target.indices.to(output.device).view(-1, 1))[:, 0]


@contextlib.contextmanager
def model_guard(model: nn.Module, *, freeze_parameters: bool = True) -> Iterator[list]:
    """Run an attribution on ``model`` without leaving a trace on it.

    Inside the block the model is in eval mode, gradients are enabled (also when the caller is
    inside ``torch.no_grad()``) and, with ``freeze_parameters``, no parameter requires grad (the
    methods need gradients w.r.t. inputs or activations only, so none are computed or stored for
    the weights). The block gets a list; every hook handle appended to it is removed on exit.
    On exit, even after an error, every module's ``training`` flag, every parameter's
    ``requires_grad`` and ``.grad`` (the same tensor object) are exactly as before.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2)).train()
        >>> with model_guard(net) as handles:
        ...     handles.append(net.register_forward_hook(lambda m, i, o: None))
        ...     net.training
        False
        >>> net.training, len(net._forward_hooks)
        (True, 0)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modes = [(module, module.training) for module in model.modules()]
    params = list(model.parameters())
    grad_flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    handles: list = []
    try:
        model.eval()
        if freeze_parameters:
            for p in params:
                p.requires_grad_(False)
        with torch.enable_grad():
            yield handles
    finally:
        for handle in handles:
            handle.remove()
        handles.clear()
        for module, mode in modes:
            module.training = mode
        for p, flag, grad in zip(params, grad_flags, grads):
            p.requires_grad_(flag)
            p.grad = grad


def resolve_layer(model: nn.Module, layer: nn.Module | str, *, method: str = "attribution") -> tuple[str, nn.Module]:
    """Find ``layer`` (a module of ``model`` or its dotted name, e.g. ``"layer4"`` or ``"features.10"``).

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
        raise ValueError(f"{method}: the model has no layer named {layer!r}; its layers include: {shown}")
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise ValueError(f"{method}: the layer {type(layer).__name__} passed as layer= is not a module of this model")
    raise TypeError(f"{method}: layer must be an nn.Module of the model or its dotted name, got {type(layer).__name__}")


@dataclass
class LayerCapture:
    """What :func:`capture_layer` records: the layer's output of the last forward pass.

    ``activation`` is the tensor that gradients can be taken with respect to (it requires grad).
    The module's output seen by the rest of the network is a clone of it, so an in-place
    operation after the layer (``nn.ReLU(inplace=True)``) cannot overwrite the captured values.
    """

    name: str
    activation: torch.Tensor | None = None
    calls: int = 0
    on_capture: list = field(default_factory=list)

    def spatial(self, method: str = "attribution") -> torch.Tensor:
        """The captured activation, checked to be a spatial map (N, K, h, w)."""
        if self.activation is None:
            raise ValueError(f"{method}: layer {self.name!r} was not called during the forward pass")
        if self.calls > 1:
            raise ValueError(
                f"{method}: layer {self.name!r} was called {self.calls} times in one forward pass; "
                "pick a layer that runs once"
            )
        if self.activation.dim() != 4:
            raise ValueError(
                f"{method}: layer {self.name!r} produces an output of shape {tuple(self.activation.shape)}, "
                "not a spatial map (N, K, h, w); pick a convolutional layer or block"
            )
        return self.activation


def capture_layer(module: nn.Module, name: str, handles: list) -> LayerCapture:
    """Register a forward hook on ``module`` that records its output as a grad-ready tensor.

    The hook handle is appended to ``handles`` (the list from :func:`model_guard`, which removes
    it). Works when nothing upstream requires grad: the output is then detached and made a leaf
    that requires grad, so the backward pass stops at the layer.
    """
    capture = LayerCapture(name=name)

    def hook(_module: nn.Module, _inputs: tuple, output: object) -> object:
        capture.calls += 1
        if not isinstance(output, torch.Tensor):
            capture.activation = torch.empty(0)  # reported by spatial() as "not a spatial map"
            return None
        activation = output if output.requires_grad else output.detach().requires_grad_(True)
        capture.activation = activation
        for callback in capture.on_capture:
            callback()
        # The network continues with a clone, so in-place ops after the layer leave ours intact.
        return activation.clone()

    handles.append(module.register_forward_hook(hook))
    return capture


def upsample_maps(maps: torch.Tensor, size: tuple[int, int], mode: str | None, *, method: str = "attribution") -> torch.Tensor:
    """Upsample (N, h, w) maps to ``size`` = (H, W).

    ``mode="bilinear"`` uses ``align_corners=False`` (pixel centres, as ``F.interpolate``,
    captum's ``LayerAttribution.interpolate`` and OpenCV's ``resize``); ``"nearest"`` copies
    each cell into a block; ``None`` returns the maps at layer resolution.
    """
    if mode not in _UPSAMPLE_MODES:
        raise ValueError(f"{method}: upsample must be one of 'bilinear', 'nearest' or None, got {mode!r}")
    if mode is None or tuple(maps.shape[-2:]) == tuple(size):
        return maps
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(maps.unsqueeze(1), size=size, mode=mode, **kwargs)[:, 0]
