"""Capture feature maps (the outputs of a network's layers) with forward hooks.

``register_forward_hook`` (PyTorch) calls a function after a module's ``forward`` with
the module's output. Keeping a reference to that output is *not* enough: a later
in-place operation, such as ``nn.ReLU(inplace=True)`` right after a convolution,
overwrites the very tensor the hook saw, and the "captured" convolution output silently
turns into the ReLU's. :func:`capture_feature_maps` therefore stores copies
(``detach().clone()``), and removes its hooks when the ``with`` block ends, also when an
error is raised inside it. Both functions go through
:func:`~xaisurvey.guard.model_guard`: afterwards every module's own training flag, every
``requires_grad``, ``.grad`` and buffer (BatchNorm running statistics) is as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Union

import torch
from torch import nn

from .guard import model_guard

__all__ = ["FeatureMaps", "capture_feature_maps", "feature_maps"]

#: Which layers to capture: ``None`` (every leaf module), a dotted name, a module of the
#: model, or a sequence of names and modules.
LayerSelection = Union[None, str, nn.Module, Sequence[Union[str, nn.Module]]]


class FeatureMaps(Mapping[str, torch.Tensor]):
    """The captured outputs, in the order the layers ran: ``maps["features.0"]`` is a
    tensor.

    A module that runs several times in one forward pass (a ReLU reused inside a ResNet
    block) is stored under its name for the first call and ``"name#2"``,
    ``"name#3"``, ... for the next ones, so no output is lost or overwritten. Tuple/list
    outputs are stored as tuples of copies.
    """

    def __init__(self) -> None:
        self._maps: dict[str, torch.Tensor] = {}
        self._calls: dict[str, int] = {}

    def _add(self, name: str, value: torch.Tensor) -> None:
        self._calls[name] = self._calls.get(name, 0) + 1
        key = name if self._calls[name] == 1 else f"{name}#{self._calls[name]}"
        self._maps[key] = value

    def clear(self) -> None:
        """Forget everything captured so far (e.g. between two forward passes)."""
        self._maps.clear()
        self._calls.clear()

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._maps[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._maps)

    def __len__(self) -> int:
        return len(self._maps)

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{k}:"
            f" {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}"
            for k, v in self._maps.items()
        )
        return f"FeatureMaps({shapes})"


def _select_modules(
    model: nn.Module, layers: LayerSelection, types: tuple[type[nn.Module], ...] | None
) -> list[tuple[str, nn.Module]]:
    named = list(model.named_modules())
    if layers is None:
        # Leaves only: a container's output is the output of its last child, captured
        # already.
        chosen = [
            (name, m)
            for name, m in named
            if name and not any(True for _ in m.children())
        ]
        if not named[0][0] and not any(True for _ in model.children()):
            chosen = [("", model)]  # the model itself is a single leaf
    else:
        wanted = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
        chosen = []
        for item in wanted:
            if isinstance(item, str):
                match = [(name, m) for name, m in named if name == item]
                if not match:
                    shown = ", ".join(n for n, _ in named[1:13]) + (
                        ", ..." if len(named) > 13 else ""
                    )
                    raise ValueError(
                        f"capture_feature_maps: the model has no layer named {item!r};"
                        f" its layers include: {shown}"
                    )
            elif isinstance(item, nn.Module):
                match = [(name, m) for name, m in named if m is item][:1]
                if not match:
                    raise ValueError(
                        f"capture_feature_maps: the {type(item).__name__} passed in"
                        " layers is not a module of this model"
                    )
            else:
                raise TypeError(
                    "capture_feature_maps: layers must hold names or modules, got"
                    f" {type(item).__name__}"
                )
            chosen.extend(match)
    if types is not None:
        chosen = [(name, m) for name, m in chosen if isinstance(m, types)]
    return chosen


def _copy(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return tuple(_copy(v) for v in value)
    return None


@contextlib.contextmanager
def capture_feature_maps(
    model: nn.Module,
    layers: LayerSelection = None,
    *,
    types: type[nn.Module] | tuple[type[nn.Module], ...] | None = None,
    to_cpu: bool = False,
    eval_mode: bool = False,
) -> Iterator[FeatureMaps]:
    """Record the outputs of ``model``'s layers in the forward passes inside the block.

    Args:
        model: any ``nn.Module``. It is left as it was: when the block ends, every
            module's own training flag, ``requires_grad``, ``.grad`` and buffer is
            restored (a forward pass in training mode inside the block updates BatchNorm
            running statistics; those updates are undone). The block is for looking, not
            for training: an optimiser step inside it would change the weights and is
            not undone.
        layers: ``None`` for every leaf module (modules without children), or one or
            several layers given by dotted name (``"features.3"``) or as modules of
            ``model``.
        types: keep only modules of these types, e.g. ``types=nn.Conv2d`` or
            ``(nn.Conv2d, nn.ReLU)``; combined with ``layers`` (both must hold).
        to_cpu: move each copy to the CPU (saves accelerator memory for large captures).
        eval_mode: run the block's forward passes in eval mode (BatchNorm with its
            running statistics, no dropout); ``False`` (the default) keeps the model's
            own modes.

    Yields:
        A :class:`FeatureMaps` mapping ``name -> tensor``, filled as layers run. Each
        tensor is a detached copy (``detach().clone()``) of the layer's output with that
        output's shape, e.g. (N, C, h, w) for a convolution, so in-place operations
        later in the network (like ``nn.ReLU(inplace=True)``) cannot change it, and it
        holds no autograd graph.

    Raises:
        TypeError: ``model`` is not a module or ``layers`` holds something else than
            names/modules.
        ValueError: a name or module in ``layers`` is not part of ``model``.

    The hooks are removed when the block ends, also when an error is raised inside it.
    Calls on one model from several threads are serialised by the guard's per-model
    lock.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten())
        >>> with capture_feature_maps(net, types=(nn.Conv2d, nn.ReLU)) as maps:
        ...     _ = net(torch.randn(1, 3, 8, 8))
        >>> {name: tuple(t.shape) for name, t in maps.items()}
        {'0': (1, 4, 6, 6), '1': (1, 4, 6, 6)}
        >>> bool((maps["0"] < 0).any())  # the conv output kept its negative values
        True
        >>> len(net[0]._forward_hooks)
        0
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            "capture_feature_maps: model must be a torch.nn.Module, got"
            f" {type(model).__name__}"
        )
    if types is not None and not isinstance(types, tuple):
        types = (types,)
    selected = _select_modules(model, layers, types)
    maps = FeatureMaps()

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: object) -> None:
            copy = _copy(output)
            if copy is None:
                return
            if to_cpu:
                copy = (
                    copy.cpu()
                    if isinstance(copy, torch.Tensor)
                    else tuple(c.cpu() if c is not None else c for c in copy)
                )
            maps._add(name, copy)

        return hook

    with model_guard(
        model,
        eval_mode=eval_mode,
        freeze_parameters=False,
        needs_grad=False,
        method="capture_feature_maps",
    ) as handles:
        for name, module in selected:
            handles.append(module.register_forward_hook(make_hook(name)))
        yield maps


def feature_maps(
    model: nn.Module,
    x: torch.Tensor,
    layers: LayerSelection = None,
    *,
    types: type[nn.Module] | tuple[type[nn.Module], ...] | None = None,
    eval_mode: bool = False,
) -> FeatureMaps:
    """Run ``model(x)`` once without gradients and return the captured outputs.

    The convenience form of :func:`capture_feature_maps` (same ``layers``, ``types`` and
    ``eval_mode``). By default the model runs in its own modes (put it in eval mode, or
    pass ``eval_mode=True``, for inference behaviour: BatchNorm running statistics, no
    dropout); either way it comes back unchanged (flags, ``requires_grad``, ``.grad``,
    buffers: a training-mode pass does not move the BatchNorm running statistics).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU()).eval()
        >>> maps = feature_maps(net, torch.rand(1, 1, 9, 9))
        >>> list(maps), tuple(maps["1"].shape)
        (['0', '1'], (1, 2, 4, 4))
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"feature_maps: x must be a torch.Tensor, got {type(x).__name__}"
        )
    with capture_feature_maps(model, layers, types=types, eval_mode=eval_mode) as maps:
        with torch.no_grad():
            model(x)
    return maps
