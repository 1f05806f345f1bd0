"""VisualBackProp (Bojarski, Choromanska, Choromanski, Firner, Jackel, Muller and Zieba,
2016).

One forward pass without gradients. Every ReLU-type activation module (``nn.ReLU``,
``nn.ReLU6``, ``nn.Hardtanh(0, max)``, and the positive part of ``nn.LeakyReLU`` /
``nn.RReLU``) that outputs a spatial map contributes its channel-averaged map; starting
from the deepest, the running mask is scaled up to the previous map's size by the
transpose of the operations between the two maps (an all-ones transposed convolution for
a convolution or average pool, max-unpooling for a max pool) and multiplied pointwise
with that map; the last scale-up reaches the input.

What it cannot follow raises a ``ValueError`` that names the layers: spatial maps
through other activations (Hardswish, SiLU, GELU, ...), parallel branches that start at
different activations (SqueezeNet's Fire modules), two equally long paths, size changes
without a transposed form (upsampling), and networks whose ReLUs are all functional
calls (GoogLeNet).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ._core import (
    TargetLike,
    as_target,
    check_bool,
    check_channels,
    check_input,
    model_guard,
)
from .normalize import minmax

__all__ = ["visual_backprop", "visual_backprop_trace", "VisualBackPropTrace"]

_UPSAMPLE = ("deconv", "deconv_normalized", "bilinear")
_MAXPOOL = ("unpool", "upsample")


@dataclass
class _Op:
    """A spatial operation seen in the forward pass: its module, input and output
    sizes."""

    name: str
    module: nn.Module
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    # max-pool argmax positions (N, C, h, w), flat per channel
    indices: torch.Tensor | None = None


@dataclass
class VisualBackPropTrace:
    """Every intermediate of one VisualBackProp run, shallow to deep (index 0 is the
    first ReLU).

    Attributes:
        layers: names of the ``nn.ReLU`` calls used (a reused module appears once per
            call, ``"name#2"`` for its second call).
        averages: the channel-averaged feature maps, each (N, h_l, w_l).
        masks: ``masks[l] = averages[l] * up_l(masks[l + 1])``, with ``masks[-1] =
            averages[-1]``.
        steps: for each level, the names of the operations whose transposes scale the
            mask from that level up to the previous one (the input for level 0).
        result: the un-normalised map at input resolution, (N, H, W).
        log_scale: (N,) natural logarithms of the factors the masks were divided by to
            stay in the floating-point range (zeros unless the product of averages left
            [2**-60, 2**60]); the formula's map is ``result * exp(log_scale)``.
        skipped: activations whose 1x1 output is followed by larger maps: channel gates
            (squeeze-and-excitation), not maps of the image, so not levels.
    """

    layers: list[str] = field(default_factory=list)
    averages: list[torch.Tensor] = field(default_factory=list)
    masks: list[torch.Tensor] = field(default_factory=list)
    steps: list[list[str]] = field(default_factory=list)
    result: torch.Tensor | None = None
    skipped: list[str] = field(default_factory=list)
    log_scale: torch.Tensor | None = None


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _geometry(
    module: nn.Module, name: str
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
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
            raise ValueError(
                f"visual_backprop: layer {name!r} uses asymmetric 'same' padding, which"
                " has no transposed form here"
            )
    return kernel, stride, _pair(padding), dilation


def _deconv_ones(mask: torch.Tensor, op: _Op, normalized: bool) -> torch.Tensor:
    """All-ones transposed convolution of (N, 1, h, w) ``mask`` with ``op``'s geometry,
    to ``op.in_size``."""
    kernel, stride, padding, dilation = _geometry(op.module, op.name)
    extra = []
    for dim in range(2):
        natural = (
            (op.out_size[dim] - 1) * stride[dim]
            - 2 * padding[dim]
            + dilation[dim] * (kernel[dim] - 1)
            + 1
        )
        extra.append(op.in_size[dim] - natural)
    if not all(0 <= e < max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(
            f"visual_backprop: cannot invert layer {op.name!r} (output {op.out_size}"
            f" from input {op.in_size}) with a transposed convolution"
        )
    up = _separable_ones_transpose(
        mask, kernel, stride, padding, tuple(extra), dilation
    )
    if normalized:
        # How many output cells overlap each input position: 1s and 2s alternate for
        # stride 2 with kernel 3, the checkerboard. Dividing by it leaves the average of
        # the overlapping cells.
        counts = _separable_ones_transpose(
            torch.ones_like(mask[:1]), kernel, stride, padding, tuple(extra), dilation
        )
        up = torch.where(counts > 0, up / counts.clamp(min=1), torch.zeros_like(up))
    return up


def _separable_ones_transpose(
    mask: torch.Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    dilation: tuple[int, int],
) -> torch.Tensor:
    """``F.conv_transpose2d(mask, ones(1, 1, kh, kw), ...)`` as shifted additions, axis
    by axis.

    The all-ones kernel is the outer product of a column and a row of ones, so the
    transposed convolution factorises over the two axes. Along one axis, input cell
    ``i`` adds its value to output cells ``i * stride + t * dilation - padding`` for
    ``t = 0 .. k - 1``: ``k`` strided slice-additions into a zero buffer, then the
    padding is cropped. Exactly the same sums as the convolution; PyTorch's CPU
    transposed convolution of one channel is slow (ResNet's 7x7 stem, 16 maps of 112 x
    112 to 224 x 224: 28 ms, against 2 ms for the additions).
    """
    out = mask
    for axis in (2, 3):
        k, s, p = kernel[axis - 2], stride[axis - 2], padding[axis - 2]
        extra, dil = output_padding[axis - 2], dilation[axis - 2]
        if k == 1 and s == 1 and p == 0 and extra == 0:
            continue  # the identity
        length = out.shape[axis]
        full = (length - 1) * s + dil * (k - 1) + 1 + extra
        shape = list(out.shape)
        shape[axis] = full
        buffer = out.new_zeros(shape)
        for t in range(k):
            start = t * dil
            target = buffer.narrow(axis, start, min((length - 1) * s + 1, full - start))
            if s > 1:
                target = target[:, :, ::s] if axis == 2 else target[:, :, :, ::s]
            target += out
        out = buffer.narrow(axis, p, full - 2 * p)
    return out.contiguous()


def _unpool(mask: torch.Tensor, op: _Op) -> torch.Tensor:
    """Send each pooled cell's value back to the position its max came from, averaged
    over channels.

    Equals ``nn.MaxUnpool2d`` for non-overlapping windows; where windows overlap
    (kernel > stride) values sent to the same position are added (the adjoint of max
    pooling), not overwritten.
    """
    assert op.indices is not None
    n, c = op.indices.shape[:2]
    h, w = op.in_size
    # One scatter into an (N, H*W) buffer for all channels at once (no (N, C, H, W)
    # buffer): summing the channels' unpooled maps and dividing by C is their average.
    flat = torch.zeros(n, h * w, dtype=mask.dtype, device=mask.device)
    flat.scatter_add_(
        1,
        op.indices.reshape(n, -1),
        mask.reshape(n, 1, -1).expand(n, c, -1).reshape(n, -1),
    )
    return (flat / c).view(n, 1, h, w)


class _RecordPoolIndices(TorchFunctionMode):
    """Make ``F.max_pool2d`` also return its argmax indices while an ``nn.MaxPool2d``
    runs.

    A forward pre-hook on each max pool enters the mode and the forward hook reads the
    indices of the module's one ``F.max_pool2d`` call from ``last`` and leaves the mode,
    so only the pool's own call goes through it (a mode active for the whole forward
    pass would add Python dispatch to every operation). Computing the indices again in
    the hook would run the pool a second time (on ResNet-18 the stem's pool costs about
    a tenth of the forward pass); PyTorch's CPU kernel computes them anyway, so asking
    for them costs nothing.
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
        if (
            func is F.max_pool2d
            and len(args) < 7
            and not kwargs.get("return_indices", False)
        ):
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
        return F.interpolate(
            mask, size=op.in_size, mode="bilinear", align_corners=False
        )
    return _deconv_ones(mask, op, normalized=upsample == "deconv_normalized")


#: Activations whose feature maps are levels: their output is the unit's "on" part
#: (>= 0).
_LEVELS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.RReLU)
#: Activation modules VisualBackProp does not average; a spatial map through one is an
#: error.
_OTHER_ACTIVATIONS = (
    nn.Hardswish,
    nn.SiLU,
    nn.GELU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Mish,
    nn.Softplus,
    nn.PReLU,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Hardshrink,
    nn.Softshrink,
    nn.Threshold,
)


def _is_level(module: nn.Module) -> bool:
    """ReLU, ReLU6, LeakyReLU, RReLU, or a Hardtanh that clips at 0 (ReLU6 is one)."""
    if isinstance(module, _LEVELS):
        return True
    if not isinstance(module, nn.Hardtanh):
        return False
    return float(module.min_val) == 0.0 and float(module.max_val) > 0.0


@dataclass
class _Level:
    """The channel average of one activation's output, and where that output came
    from."""

    name: str
    average: torch.Tensor
    size: tuple[int, int]


def _channel_mean(maps: torch.Tensor) -> torch.Tensor:
    """The mean over the channels of (N, C, h, w) ``maps``, (N, h, w).

    Written as a product with a row of ones, (1, C) @ (N, C, h*w): PyTorch's CPU
    reduction over the channel axis of an NCHW tensor walks it with a stride of h*w and
    was about 6 times slower than the matrix product (ResNet-18, 64 x 112 x 112: 17 ms
    vs 3 ms on one thread), which reads the same memory once, contiguously. The sums are
    the same numbers added in another order.
    """
    n, c, h, w = maps.shape
    if not maps.is_contiguous():
        return maps.mean(dim=1)
    ones = torch.ones(1, c, dtype=maps.dtype, device=maps.device)
    return torch.matmul(ones, maps.view(n, c, h * w)).view(n, h, w).div_(c)


def _names(ops: list[_Op]) -> str:
    return "[" + ", ".join(repr(op.name) for op in ops) + "]"


def _detour(
    ops: list[_Op], start: tuple[int, int], end: tuple[int, int]
) -> _Op | None:
    """The first op without a transposed form on a sequence of ops (sizes connecting)
    that leads from a ``start``-sized map to an ``end``-sized one, or None."""
    first_blocked: list[_Op | None] = []
    reached: list[bool] = []
    for i, op in enumerate(ops):
        own = op if op.module is None else None
        hit, blocked = op.in_size == start, own
        for j in range(i):
            if reached[j] and ops[j].out_size == op.in_size:
                hit, blocked = True, first_blocked[j] or own
                if blocked is not None:
                    break
        reached.append(hit)
        first_blocked.append(blocked if hit else None)
        if hit and blocked is not None and op.out_size == end:
            return blocked
    return None


def _chain(
    ops: list[_Op],
    start: tuple[int, int],
    end: tuple[int, int],
    start_name: str,
    end_name: str,
    levels: dict[str, str],
) -> list[_Op]:
    """The spatial ops that carry the ``start`` map of ``start_name`` to the ``end`` map
    of ``end_name``.

    Of the ops that ran between the two maps (in run order), the chain is the longest
    sequence whose sizes connect (each op's input size is the previous op's output
    size): in a sequential network every op between two activations is on it, and a
    branch that starts elsewhere, such as a ResNet's downsampling shortcut (input size
    != running size) is left out. ``levels`` maps the ops that read the output of
    another activation (or the input) to its name: such an op on the chain means two
    parallel branches (SqueezeNet's expand 1x1 and 3x3), which VisualBackProp cannot
    combine, and raises. So do two equally long chains (an ambiguous path) and an op on
    the chain without a transposed form (an upsampling).
    """
    n = len(ops)
    # best[i] = (length, number of distinct longest chains) of chains from start that
    # end with op i
    best: list[tuple[int, int]] = [(-1, 0)] * n
    previous: list[int | None] = [None] * n
    for i, op in enumerate(ops):
        if op.module is None:
            continue
        length, count, link = (1, 1, None) if op.in_size == start else (-1, 0, None)
        for j in range(i):
            if best[j][0] > 0 and ops[j].out_size == op.in_size:
                if best[j][0] + 1 > length:
                    length, count, link = best[j][0] + 1, best[j][1], j
                elif best[j][0] + 1 == length:
                    count += best[j][1]
        best[i], previous[i] = (length, count), link
    top, count, last = (0, 1, None) if start == end else (-1, 0, None)
    for i, op in enumerate(ops):
        if best[i][0] > 0 and op.out_size == end:
            if best[i][0] > top:
                top, count, last = best[i][0], best[i][1], i
            elif best[i][0] == top:
                count += best[i][1]
    where = f"from the {start} map of {start_name!r} to the {end} map of {end_name!r}"
    if top == 0:
        # No op carries the map, which is right only if nothing between the two
        # maps leads from one to the other: a size change without a transposed form
        # and back (an upsampling, then a strided convolution) would otherwise be
        # skipped silently.
        blocked = _detour(ops, start, end)
        if blocked is not None:
            raise ValueError(
                f"visual_backprop: layer {blocked.name!r} changes the map size from "
                f"{blocked.in_size} to {blocked.out_size} and has no transposed form "
                f"(supported: Conv2d, MaxPool2d, AvgPool2d), on the way {where}"
            )
    if top < 0:
        blocked = [op for op in ops if op.module is None]
        if blocked:
            op = blocked[0]
            raise ValueError(
                f"visual_backprop: layer {op.name!r} changes the map size from"
                f" {op.in_size} to {op.out_size} and has no transposed form (supported:"
                f" Conv2d, MaxPool2d, AvgPool2d), on the way {where}"
            )
        raise ValueError(
            f"visual_backprop: cannot follow the network {where}: no sequence of the"
            f" layers that ran between them, {_names(ops)}, connects the two sizes"
            " (functional calls such as F.max_pool2d or F.interpolate inside forward"
            " are invisible to hooks: use modules)"
        )
    if count > 1:
        raise ValueError(
            f"visual_backprop: cannot follow the network {where}: {count} different"
            f" paths through the layers {_names(ops)} connect the two maps, and"
            " VisualBackProp cannot tell which one the map took"
        )
    chain: list[_Op] = []
    while last is not None:
        chain.append(ops[last])
        last = previous[last]
    chain.reverse()
    for op in chain:
        source = levels.get(op.name)
        if source is not None and source != start_name:
            raise ValueError(
                f"visual_backprop: cannot follow the network {where}: layer {op.name!r}"
                f" reads the output of {source!r}, a parallel branch (VisualBackProp"
                " follows one path; concatenated or added branches that start at"
                " different activations are not supported)"
            )
    return chain


def visual_backprop_trace(
    model: nn.Module,
    x: torch.Tensor,
    *,
    upsample: str = "deconv",
    maxpool: str = "unpool",
) -> VisualBackPropTrace:
    """Run VisualBackProp and keep every intermediate (for figures and teaching).

    Same arguments as :func:`xaisurvey.attribution.visual_backprop`; returns a
    :class:`VisualBackPropTrace` whose ``result`` is the un-normalised (N, H, W) map.
    """
    x = check_input(x, model, method="visual_backprop")
    if upsample not in _UPSAMPLE:
        raise ValueError(
            "visual_backprop: upsample must be one of"
            f" {', '.join(map(repr, _UPSAMPLE))}, got {upsample!r}"
        )
    if maxpool not in _MAXPOOL:
        raise ValueError(
            f"visual_backprop: maxpool must be 'unpool' or 'upsample', got {maxpool!r}"
        )
    # events: _Level for activation outputs, _Op for size-relevant layers, in run order.
    events: list = []
    calls: dict[str, int] = {}
    # spatial maps through activations VisualBackProp does not average
    others: list[str] = []
    # id(tensor) -> (weak reference to it, the activation that produced it), to see
    # which op reads which map; weak, so that no map lives longer than the network needs
    # it.
    produced: dict[int, tuple[weakref.ref, str]] = {id(x): (weakref.ref(x), "<input>")}
    # op name -> name of the activation whose output it reads
    readers: dict[str, str] = {}
    leaves = [
        (name, m)
        for name, m in model.named_modules()
        if not any(True for _ in m.children())
    ]

    def make_hook(name: str, module: nn.Module):
        level = _is_level(module)
        leaky = isinstance(module, (nn.LeakyReLU, nn.RReLU))
        other = not level and isinstance(module, _OTHER_ACTIVATIONS)

        def hook(_module: nn.Module, inputs: tuple, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            key = name if calls[name] == 1 else f"{name}#{calls[name]}"
            if not (isinstance(output, torch.Tensor) and output.dim() == 4):
                return
            first = (
                inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            )
            if level:
                # The average is a new tensor, so an in-place op later cannot alter it.
                # LeakyReLU: its positive part, which is the ReLU of the same
                # pre-activation.
                kept = output.clamp(min=0) if leaky else output
                events.append(
                    _Level(key, _channel_mean(kept), tuple(output.shape[-2:]))
                )
                produced[id(output)] = (weakref.ref(output), key)
            elif other:
                if output.shape[-1] * output.shape[-2] > 1:
                    others.append(f"{type(module).__name__} {key!r}")
            elif first is not None and first.dim() == 4:
                in_size, out_size = tuple(first.shape[-2:]), tuple(output.shape[-2:])
                source = produced.get(id(first))
                if source is not None and source[0]() is first:
                    readers[key] = source[1]
                if isinstance(module, (nn.Conv2d, nn.AvgPool2d)):
                    events.append(_Op(key, module, in_size, out_size))
                elif isinstance(module, nn.MaxPool2d):
                    indices = None
                    if maxpool == "unpool":
                        pools.leave()
                        if pools.last is None or pools.last.shape != output.shape:
                            raise ValueError(
                                f"visual_backprop: max pool {key!r} did not call"
                                " F.max_pool2d; its argmax positions are unknown (use"
                                " maxpool='upsample')"
                            )
                        indices, pools.last = pools.last, None
                    events.append(_Op(key, module, in_size, out_size, indices))
                elif in_size != out_size:
                    # reported only if on the path
                    events.append(_Op(key, None, in_size, out_size))

        return hook

    pools = _RecordPoolIndices()
    with (
        model_guard(
            model, freeze_parameters=False, needs_grad=False, method="visual_backprop"
        ) as handles,
        torch.no_grad(),
    ):
        check_channels(model, x.shape[1], handles, method="visual_backprop")
        for name, module in leaves:
            if maxpool == "unpool" and isinstance(module, nn.MaxPool2d):
                handles.append(module.register_forward_pre_hook(pools.enter))
            handles.append(module.register_forward_hook(make_hook(name, module)))
        try:
            model(x)
        finally:
            produced.clear()
            # a pool's forward raised before its hook could leave the mode
            while pools.depth:
                pools.leave()
    levels = [e for e in events if isinstance(e, _Level)]
    shown = ", ".join(others[:3]) + (
        f" and {len(others) - 3} more" if len(others) > 3 else ""
    )
    if not levels:
        raise ValueError(
            "visual_backprop: the model has no nn.ReLU, nn.ReLU6 or nn.LeakyReLU"
            " module producing a spatial map (N, C, h,"
            f" w){f' (its maps pass through {shown})' if others else ''};"
            " VisualBackProp averages ReLU feature maps. ReLUs called as"
            " F.relu/torch.relu inside forward are invisible to hooks: use nn.ReLU"
            " modules"
        )
    if others:
        raise ValueError(
            "visual_backprop: the model's feature maps pass through activations it"
            f" does not average ({shown}); VisualBackProp averages the maps of ReLU,"
            " ReLU6 and LeakyReLU modules (the units that are on), and would explain"
            " such a network by part of its layers only"
        )
    # A 1x1 map followed by a larger one is a channel gate (squeeze-and-excitation), not
    # a map of the image: it is skipped, and the ops around it are not on the path of
    # the image's maps.
    largest_after = [0] * len(levels)
    for i in range(len(levels) - 2, -1, -1):
        h, w = levels[i + 1].size
        largest_after[i] = max(largest_after[i + 1], h * w)
    gates = {
        id(lv)
        for lv, later in zip(levels, largest_after)
        if lv.size == (1, 1) and later > 1
    }
    trace = VisualBackPropTrace()
    trace.skipped = [lv.name for lv in levels if id(lv) in gates]
    # chains[l]: the ops from level l - 1 (or the input) to level l
    chains: list[list[_Op]] = []
    size, start_name, ops = tuple(x.shape[-2:]), "<input>", []
    for event in events:
        if isinstance(event, _Op):
            ops.append(event)
            continue
        if id(event) in gates:
            continue
        chains.append(_chain(ops, size, event.size, start_name, event.name, readers))
        trace.layers.append(event.name)
        trace.averages.append(event.average)
        trace.steps.append([op.name for op in chains[-1]])
        size, start_name, ops = event.size, event.name, []
    # Deepest first: scale the mask up through the ops that led to its level, multiply,
    # repeat. A deep network multiplies dozens of averages (MobileNetV2: 35), whose
    # product leaves the floating-point range (float32: 2**-126 .. 2**128) and would
    # become an all-zero map; a mask whose largest value leaves [2**-60, 2**60] is
    # divided by that value (per image) and the factor is kept in ``log_scale``. Min-max
    # normalisation does not see such factors.
    log_scale = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    mask = _keep_in_range(trace.averages[-1].unsqueeze(1), log_scale)
    masks = [mask[:, 0]]
    for level in range(len(chains) - 1, -1, -1):
        for op in reversed(chains[level]):
            mask = _scale_up(mask, op, upsample, maxpool)
        if level > 0:
            mask = _keep_in_range(
                mask * trace.averages[level - 1].unsqueeze(1), log_scale
            )
            masks.append(mask[:, 0])
    trace.masks = masks[::-1]
    trace.result = mask[:, 0]
    trace.log_scale = log_scale
    return trace


_LOW, _HIGH = 2.0**-60, 2.0**60


def _keep_in_range(mask: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """``mask`` (N, 1, h, w) divided, per image, by its maximum where that leaves
    [2**-60, " "2**60]."""
    top = mask.amax(dim=(1, 2, 3))
    out = (top > 0) & ((top < _LOW) | (top > _HIGH))
    if not bool(out.any()):
        return mask
    factor = torch.where(out, top, torch.ones_like(top))
    log_scale += torch.log(factor.double())
    return mask / factor.view(-1, 1, 1, 1)


def visual_backprop(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike | None = None,
    *,
    upsample: str = "deconv",
    maxpool: str = "unpool",
    normalize: bool = True,
) -> torch.Tensor:
    """VisualBackProp: the input pixels that feed the network's strongest feature maps.

    Paper: M. Bojarski et al., "VisualBackProp: efficient visualization of CNNs" (arXiv
    1611.05418, 2016).

    Formula, for the L ReLU'd feature maps ``A_l`` (C_l x h_l x w_l) in forward order::

        a_l  = 1/C_l sum_c A_l[c]                       (channel average, h_l x w_l)
        M_L  = a_L
        M_l  = a_l * D_{l+1}(M_{l+1})                   (pointwise product)
        map  = normalise( D_1(M_1) )                    (input size H x W)

    where ``D_{l+1}`` transposes the layers between ``A_l`` and ``A_{l+1}``: for a
    convolution or average pool an all-ones transposed convolution with that layer's
    kernel size, stride, padding and dilation (output padding chosen to hit the size
    exactly), for a max pool max-unpooling to the recorded argmax positions. Cost: one
    forward pass without gradients plus a few single-channel transposed convolutions.

    Target-independent by design: the map depends on the image only, not on a class.

    Activations: the paper averages ReLU feature maps, the units that are on (>= 0). The
    levels here are the outputs of ``nn.ReLU``, ``nn.ReLU6`` and ``nn.Hardtanh(0, max)``
    modules as they are, and of ``nn.LeakyReLU`` / ``nn.RReLU`` modules their positive
    part ``max(out, 0)``, which is the ReLU of the same pre-activation (the negative
    leak is not "on"). Any other activation module with a spatial output larger than 1x1
    (Hardswish in MobileNetV3, SiLU in EfficientNet, GELU in ConvNeXt, ELU, Sigmoid,
    ...) makes it raise, naming the modules: their maps are not "on/off" maps, and
    skipping them would explain the network by part of its layers. ReLUs called as
    functions (``F.relu`` inside ``forward``) cannot be seen by module hooks: a network
    without any ReLU module raises; one with both uses the modules only.

    Branches: between two levels, the path is the longest sequence of the layers that
    ran whose map sizes connect (each layer's input size is the previous one's output
    size). In a sequential network that is every layer; a ResNet's or RegNet's
    downsampling shortcut (its input size is not the running size) is left out, and a
    1x1 convolution shortcut is an identity for the transpose anyway. A 1x1 activation
    followed by larger maps is a channel gate (squeeze-and-excitation), not a map of the
    image, and is skipped (``VisualBackPropTrace.skipped``). Raised instead: a layer on
    the path that reads the output of another activation than the previous level
    (parallel branches, as in SqueezeNet's Fire modules, whose 1x1 and 3x3 branches are
    concatenated), two different paths of the same length, and a size change without a
    transposed form.

    Range: the product of many averages (35 in MobileNetV2) leaves the floating-point
    range; the mask is rescaled per image when its maximum leaves [2**-60, 2**60], which
    min-max normalisation does not see; with ``normalize=False`` the rescaling is
    undone, or a ``ValueError`` says that the map is outside the dtype's range.

    Args:
        model: any ``nn.Module`` built with ReLU-type activation modules (``inplace`` or
            not); run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: ignored (accepted so that every method has the same signature); when
            given, it is still checked (one target per image), so a wrong call fails
            loudly.
        upsample: ``"deconv"`` (the paper: all-ones transposed convolution; strided
            layers leave blocky/checkerboard artefacts because output cells are covered
            by 1, 2 or 4 kernel copies), ``"deconv_normalized"`` (the same, divided by
            that overlap count, which removes the artefacts) or ``"bilinear"`` (bilinear
            interpolation to each layer's size).
        maxpool: ``"unpool"`` (max-unpooling with the recorded indices, averaged over
            channels) or ``"upsample"`` (treat a max pool like a convolution of the same
            geometry).
        normalize: scale each map to [0, 1] (min-max, per image; a flat map becomes
            zeros).

    Returns:
        (N, H, W) maps at input resolution, on the model's device and dtype.

    Raises:
        ValueError: no ReLU-type module with a spatial output, another activation with
            one, a path it cannot follow (parallel branches, ambiguous paths, a size
            change that cannot be transposed; the message names the layers), bad
            options, or the checks of the input and target.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
        ...     torch.nn.ReLU(),
        ...     torch.nn.AdaptiveMaxPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 2),
        ... )
        >>> visual_backprop(net, torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 8, 8])
    """
    check_bool(normalize, "normalize", "visual_backprop")
    if target is not None:
        check_input(x, model, method="visual_backprop")
        as_target(target, x.shape[0], method="visual_backprop")
    trace = visual_backprop_trace(model, x, upsample=upsample, maxpool=maxpool)
    assert trace.result is not None and trace.log_scale is not None
    if normalize:
        return minmax(trace.result)
    if not bool(trace.log_scale.any()):
        return trace.result
    factor = trace.log_scale.exp().to(trace.result.dtype)
    if not bool(torch.isfinite(factor).all() & (factor > 0).all()):
        raise ValueError(
            "visual_backprop: normalize=False, but the un-normalised map of this"
            f" network lies outside the {trace.result.dtype} range (the product of"
            f" {len(trace.layers)} averaged maps); use normalize=True"
        )
    return trace.result * factor.view(-1, 1, 1)
