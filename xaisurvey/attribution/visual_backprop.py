"""VisualBackProp (Bojarski, Choromanska, Choromanski, Firner, Jackel, Muller and Zieba, 2016).

One forward pass without gradients. Every ``nn.ReLU`` that outputs a spatial map contributes its
channel-averaged map; starting from the deepest, the running mask is scaled up to the previous
map's size by the transpose of the operations between the two maps (an all-ones transposed
convolution for a convolution or average pool, max-unpooling for a max pool) and multiplied
pointwise with that map; the last scale-up reaches the input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ._core import TargetLike, as_target, check_channels, check_input, model_guard
from .normalize import minmax

__all__ = ["visual_backprop", "visual_backprop_trace", "VisualBackPropTrace"]

_UPSAMPLE = ("deconv", "deconv_normalized", "bilinear")
_MAXPOOL = ("unpool", "upsample")


@dataclass
class _Op:
    """A spatial operation seen in the forward pass: its module, input and output sizes."""

    name: str
    module: nn.Module
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    indices: torch.Tensor | None = None  # max-pool argmax positions (N, C, h, w), flat per channel


@dataclass
class VisualBackPropTrace:
    """Every intermediate of one VisualBackProp run, shallow to deep (index 0 is the first ReLU).

    Attributes:
        layers: names of the ``nn.ReLU`` calls used (a reused module appears once per call,
            ``"name#2"`` for its second call).
        averages: the channel-averaged feature maps, each (N, h_l, w_l).
        masks: ``masks[l] = averages[l] * up_l(masks[l + 1])``, with ``masks[-1] = averages[-1]``.
        steps: for each level, the names of the operations whose transposes scale the mask from
            that level up to the previous one (the input for level 0).
        result: the un-normalised map at input resolution, (N, H, W).
    """

    layers: list[str] = field(default_factory=list)
    averages: list[torch.Tensor] = field(default_factory=list)
    masks: list[torch.Tensor] = field(default_factory=list)
    steps: list[list[str]] = field(default_factory=list)
    result: torch.Tensor | None = None


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _geometry(module: nn.Module, name: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Kernel size, stride, padding and dilation of a convolution or pooling module."""
    kernel = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    dilation = _pair(getattr(module, "dilation", 1))
    padding = module.padding
    if isinstance(padding, str):  # "valid" or "same" (stride 1 only in PyTorch)
        if padding == "valid":
            padding = (0, 0)
        elif all((d * (k - 1)) % 2 == 0 for k, d in zip(kernel, dilation)):
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
        else:
            raise ValueError(f"visual_backprop: layer {name!r} uses asymmetric 'same' padding, which has no transposed form here")
    return kernel, stride, _pair(padding), dilation


def _deconv_ones(mask: torch.Tensor, op: _Op, normalized: bool) -> torch.Tensor:
    """All-ones transposed convolution of (N, 1, h, w) ``mask`` with ``op``'s geometry, to ``op.in_size``."""
    kernel, stride, padding, dilation = _geometry(op.module, op.name)
    extra = []
    for dim in range(2):
        natural = (op.out_size[dim] - 1) * stride[dim] - 2 * padding[dim] + dilation[dim] * (kernel[dim] - 1) + 1
        extra.append(op.in_size[dim] - natural)
    if not all(0 <= e < max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(
            f"visual_backprop: cannot invert layer {op.name!r} (output {op.out_size} from input {op.in_size}) "
            "with a transposed convolution"
        )
    up = _separable_ones_transpose(mask, kernel, stride, padding, tuple(extra), dilation)
    if normalized:
        # How many output cells overlap each input position: 1s and 2s alternate for stride 2
        # with kernel 3, the checkerboard. Dividing by it leaves the average of the overlapping cells.
        counts = _separable_ones_transpose(torch.ones_like(mask[:1]), kernel, stride, padding, tuple(extra), dilation)
        up = torch.where(counts > 0, up / counts.clamp(min=1), torch.zeros_like(up))
    return up


def _separable_ones_transpose(mask: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                              padding: tuple[int, int], output_padding: tuple[int, int],
                              dilation: tuple[int, int]) -> torch.Tensor:
    """``F.conv_transpose2d(mask, ones(1, 1, kh, kw), ...)`` computed as a column pass then a row pass.

    The all-ones kernel is the outer product of a column and a row of ones, and a transposed
    convolution factorises over the two axes like the kernel does, so the result is exactly the
    same sums, for kh + kw instead of kh * kw additions per output cell (ResNet's 7x7 stem: 14
    instead of 49).
    """
    column = torch.ones(1, 1, kernel[0], 1, dtype=mask.dtype, device=mask.device)
    row = torch.ones(1, 1, 1, kernel[1], dtype=mask.dtype, device=mask.device)
    tall = F.conv_transpose2d(mask, column, stride=(stride[0], 1), padding=(padding[0], 0),
                              output_padding=(output_padding[0], 0), dilation=(dilation[0], 1))
    return F.conv_transpose2d(tall, row, stride=(1, stride[1]), padding=(0, padding[1]),
                              output_padding=(0, output_padding[1]), dilation=(1, dilation[1]))


def _unpool(mask: torch.Tensor, op: _Op) -> torch.Tensor:
    """Send each pooled cell's value back to the position its max came from, averaged over channels.

    Equals ``nn.MaxUnpool2d`` for non-overlapping windows; where windows overlap (kernel > stride)
    values sent to the same position are added (the adjoint of max pooling), not overwritten.
    """
    assert op.indices is not None
    n, c = op.indices.shape[:2]
    h, w = op.in_size
    # One scatter into an (N, H*W) buffer for all channels at once (no (N, C, H, W) buffer):
    # summing the channels' unpooled maps and dividing by C is their average.
    flat = torch.zeros(n, h * w, dtype=mask.dtype, device=mask.device)
    flat.scatter_add_(1, op.indices.reshape(n, -1), mask.reshape(n, 1, -1).expand(n, c, -1).reshape(n, -1))
    return (flat / c).view(n, 1, h, w)


class _RecordPoolIndices(TorchFunctionMode):
    """Make ``F.max_pool2d`` also return its argmax indices while an ``nn.MaxPool2d`` runs.

    A forward pre-hook on each max pool enters the mode and the forward hook reads the indices
    of the module's one ``F.max_pool2d`` call from ``last`` and leaves the mode, so only the
    pool's own call goes through it (a mode active for the whole forward pass would add Python
    dispatch to every operation). Computing the indices again in the hook would run the pool a
    second time (on ResNet-18 the stem's pool costs about a tenth of the forward pass);
    PyTorch's CPU kernel computes them anyway, so asking for them costs nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: torch.Tensor | None = None
        self.depth = 0

    def enter(self, *_: object) -> None:
        self.last = None
        self.__enter__()
        self.depth += 1

    def leave(self) -> None:
        if self.depth:
            self.depth -= 1
            self.__exit__(None, None, None)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = dict(kwargs or {})
        if func is F.max_pool2d and len(args) < 7 and not kwargs.get("return_indices", False):
            kwargs["return_indices"] = True
            output, self.last = func(*args, **kwargs)
            return output
        return func(*args, **kwargs)


def _scale_up(mask: torch.Tensor, op: _Op, upsample: str, maxpool: str) -> torch.Tensor:
    if isinstance(op.module, nn.MaxPool2d) and maxpool == "unpool":
        return _unpool(mask, op)
    if upsample == "bilinear":
        if op.in_size == op.out_size:
            return mask
        return F.interpolate(mask, size=op.in_size, mode="bilinear", align_corners=False)
    return _deconv_ones(mask, op, normalized=upsample == "deconv_normalized")


def _chain(events: list, start: tuple[int, int], end: tuple[int, int], end_name: str) -> list[_Op]:
    """The spatial ops that carry a map of size ``start`` to one of size ``end``, in forward order.

    Ops whose input size does not match the running size belong to another branch (e.g. a
    ResNet's downsampling shortcut) and are skipped: the chain follows the main path.
    """
    size, chain = start, []
    for op in events:
        if op.in_size == size:
            if op.module is None:  # a layer that changes the size and that we cannot transpose
                raise ValueError(
                    f"visual_backprop: layer {op.name!r} changes the map size from {op.in_size} to {op.out_size} "
                    "and has no transposed form (supported: Conv2d, MaxPool2d, AvgPool2d)"
                )
            chain.append(op)
            size = op.out_size
    if size != end:
        raise ValueError(
            f"visual_backprop: cannot follow the network from a {start} map to the {end} output of {end_name!r}: "
            "a layer between them changes the size in a way VisualBackProp cannot undo (functional calls "
            "such as F.max_pool2d inside forward are invisible to hooks: use modules)"
        )
    return chain


def visual_backprop_trace(
    model: nn.Module, x: torch.Tensor, *, upsample: str = "deconv", maxpool: str = "unpool"
) -> VisualBackPropTrace:
    """Run VisualBackProp and keep every intermediate (for figures and teaching).

    Same arguments as :func:`xaisurvey.attribution.visual_backprop`; returns a :class:`VisualBackPropTrace` whose
    ``result`` is the un-normalised (N, H, W) map.
    """
    x = check_input(x, model, method="visual_backprop")
    if upsample not in _UPSAMPLE:
        raise ValueError(f"visual_backprop: upsample must be one of {', '.join(map(repr, _UPSAMPLE))}, got {upsample!r}")
    if maxpool not in _MAXPOOL:
        raise ValueError(f"visual_backprop: maxpool must be 'unpool' or 'upsample', got {maxpool!r}")
    # events: ("map", name, averaged map) for ReLU outputs, _Op for size-relevant layers, in run order.
    events: list = []
    calls: dict[str, int] = {}
    leaves = [(name, m) for name, m in model.named_modules() if not any(True for _ in m.children())]

    def make_hook(name: str, module: nn.Module):
        def hook(_module: nn.Module, inputs: tuple, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            key = name if calls[name] == 1 else f"{name}#{calls[name]}"
            if not (isinstance(output, torch.Tensor) and output.dim() == 4):
                return
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            if isinstance(module, nn.ReLU):
                # The mean is a new tensor, so an in-place op later cannot alter it.
                events.append(("map", key, output.mean(dim=1)))
            elif first is not None and first.dim() == 4:
                in_size, out_size = tuple(first.shape[-2:]), tuple(output.shape[-2:])
                if isinstance(module, (nn.Conv2d, nn.AvgPool2d)):
                    events.append(_Op(key, module, in_size, out_size))
                elif isinstance(module, nn.MaxPool2d):
                    indices = None
                    if maxpool == "unpool":
                        pools.leave()
                        if pools.last is None or pools.last.shape != output.shape:
                            raise ValueError(
                                f"visual_backprop: max pool {key!r} did not call F.max_pool2d; "
                                "its argmax positions are unknown (use maxpool='upsample')"
                            )
                        indices, pools.last = pools.last, None
                    events.append(_Op(key, module, in_size, out_size, indices))
                elif in_size != out_size:
                    events.append(_Op(key, None, in_size, out_size))  # reported only if on the path

        return hook

    pools = _RecordPoolIndices()
    with model_guard(model, freeze_parameters=False, needs_grad=False, method="visual_backprop") as handles, torch.no_grad():
        check_channels(model, x.shape[1], handles, method="visual_backprop")
        for name, module in leaves:
            if maxpool == "unpool" and isinstance(module, nn.MaxPool2d):
                handles.append(module.register_forward_pre_hook(pools.enter))
            handles.append(module.register_forward_hook(make_hook(name, module)))
        try:
            model(x)
        finally:
            while pools.depth:  # a pool's forward raised before its hook could leave the mode
                pools.leave()
    map_positions = [i for i, e in enumerate(events) if isinstance(e, tuple)]
    if not map_positions:
        raise ValueError(
            "visual_backprop: the model has no nn.ReLU module producing a spatial map (N, C, h, w); "
            "VisualBackProp averages ReLU feature maps. ReLUs called as F.relu/torch.relu inside forward "
            "are invisible to hooks: use nn.ReLU modules"
        )
    trace = VisualBackPropTrace()
    chains: list[list[_Op]] = []  # chains[l]: the ops from level l - 1 (or the input) to level l
    size, previous = tuple(x.shape[-2:]), 0
    for pos in map_positions:
        _, key, average = events[pos]
        ops = [e for e in events[previous:pos] if isinstance(e, _Op)]
        chains.append(_chain(ops, size, tuple(average.shape[-2:]), key))
        trace.layers.append(key)
        trace.averages.append(average)
        trace.steps.append([op.name for op in chains[-1]])
        size, previous = tuple(average.shape[-2:]), pos + 1
    # Deepest first: scale the mask up through the ops that led to its level, multiply, repeat.
    mask = trace.averages[-1].unsqueeze(1)
    masks = [mask[:, 0]]
    for level in range(len(chains) - 1, -1, -1):
        for op in reversed(chains[level]):
            mask = _scale_up(mask, op, upsample, maxpool)
        if level > 0:
            mask = mask * trace.averages[level - 1].unsqueeze(1)
            masks.append(mask[:, 0])
    trace.masks = masks[::-1]
    trace.result = mask[:, 0]
    return trace


def visual_backprop(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike | None = None,
    *,
    upsample: str = "deconv",
    maxpool: str = "unpool",
    normalize: bool = True,
) -> torch.Tensor:
    """VisualBackProp: which input pixels feed the network's strongest ReLU feature maps.

    Paper: M. Bojarski et al., "VisualBackProp: efficient visualization of CNNs" (arXiv
    1611.05418, 2016).

    Formula, for the L ReLU'd feature maps ``A_l`` (C_l x h_l x w_l) in forward order::

        a_l  = 1/C_l sum_c A_l[c]                       (channel average, h_l x w_l)
        M_L  = a_L
        M_l  = a_l * D_{l+1}(M_{l+1})                   (pointwise product)
        map  = normalise( D_1(M_1) )                    (input size H x W)

    where ``D_{l+1}`` transposes the layers between ``A_l`` and ``A_{l+1}``: for a convolution
    or average pool an all-ones transposed convolution with that layer's kernel size, stride,
    padding and dilation (output padding chosen to hit the size exactly), for a max pool
    max-unpooling to the recorded argmax positions. Cost: one forward pass without gradients
    plus a few single-channel transposed convolutions.

    Target-independent by design: the map depends on the image only, not on a class.

    Args:
        model: any ``nn.Module`` built with ``nn.ReLU`` modules (``inplace`` or not); run in eval
            mode and left unchanged. Networks with branches (ResNets) are followed along the main
            path: layers whose input is not the running map (a downsampling shortcut) are skipped.
        x: float images (N, C, H, W).
        target: ignored (accepted so that every method has the same signature); when given, it is
            still checked (one target per image), so a wrong call fails loudly.
        upsample: ``"deconv"`` (the paper: all-ones transposed convolution; strided layers leave
            blocky/checkerboard artefacts because output cells are covered by 1, 2 or 4 kernel
            copies), ``"deconv_normalized"`` (the same, divided by that overlap count, which
            removes the artefacts) or ``"bilinear"`` (bilinear interpolation to each layer's size).
        maxpool: ``"unpool"`` (max-unpooling with the recorded indices, averaged over channels)
            or ``"upsample"`` (treat a max pool like a convolution of the same geometry).
        normalize: scale each map to [0, 1] (min-max, per image; a flat map becomes zeros).

    Returns:
        (N, H, W) maps at input resolution, on the model's device and dtype.

    Raises:
        ValueError: no ``nn.ReLU`` with a spatial output, a size change that cannot be transposed,
            bad options, or the checks of the input and target.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> visual_backprop(net, torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 8, 8])
    """
    if target is not None:
        check_input(x, model, method="visual_backprop")
        as_target(target, x.shape[0], method="visual_backprop")
    trace = visual_backprop_trace(model, x, upsample=upsample, maxpool=maxpool)
    assert trace.result is not None
    return minmax(trace.result) if normalize else trace.result
