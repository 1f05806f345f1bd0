"""Feature visualisation by activation maximisation: the image a channel or a class
wants to see.

Activation maximisation (Erhan et al. 2009; Simonyan et al. 2014; Olah, Mordvintsev and
Schubert, *Feature Visualization*, Distill 2017) starts from noise and climbs the
gradient of one unit's activation with respect to the input image:

.. math::

    x^\\star = \\arg\\max_{x \\in [0, 1]^{C \\times H \\times W}}
        \\; \\mathbb{E}_{t \\sim T}\\big[h(t(x))\\big]
        - \\lambda_{2} R_{2}(x) - \\lambda_{TV} R_{TV}(x)

where ``h`` is the objective (the mean over positions of one channel of a layer,
``h_k(x) = (1 / hw) sum_ij A^k_ij(x)``, or one class logit ``y_c(x)``), ``T`` a
distribution of small random transformations (jitter, scaling, rotation) that the image
must survive, ``R_2(x) = mean((x - 0.5)^2)`` keeps the image near grey and ``R_TV(x) =
mean|x[..., i+1, j] - x[..., i, j]| + mean|x[..., i, j+1] - x[..., i, j]|``
(total variation) penalises high frequencies. Without any of them ("naive") the ascent
finds high-frequency patterns that excite the unit but look like noise to us; the
regularisers and the decorrelated Fourier parameterisation of Olah et al. steer it
towards images with natural statistics.

Conventions: images are float tensors in [0, 1], (K, C, H, W), one image per target (the
targets are optimised together as one batch, which is exact because a model in eval mode
treats the images of a batch independently). The model is never changed: eval mode,
frozen parameters, no gradient stored in them and every hook removed, also after an
error (:func:`xaisurvey.guard.model_guard`). The images are optimised on the model's
device in the model's floating-point dtype (float32 or float64; the blur kernels and
transformation grids are made there too); the random draws come from a seeded CPU
generator, so a seed gives the same start on every device. The results are returned on
the CPU, in the model's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attribution._core import check_not_parallel, resolve_layer
from .guard import model_guard

__all__ = ["Recipe", "RECIPES", "FeatVis", "maximise_channel", "maximise_class"]

# The square root of ImageNet's colour correlation matrix (Olah et al. 2017, the Lucid
# library): the optimiser moves in a decorrelated colour space, which this matrix maps
# back to RGB.
_COLOR_CORRELATION_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
)
_COLOR_CORRELATION_SQRT = (
    _COLOR_CORRELATION_SQRT / _COLOR_CORRELATION_SQRT.norm(dim=0).max()
)


@dataclass(frozen=True)
class Recipe:
    """How the image is parameterised and regularised during the ascent.

    Attributes:
        param: ``"pixel"`` — the pixels themselves, kept in [0, 1] by clamping after
            each step (projected gradient ascent); ``"fourier"`` — the decorrelated
            parameterisation of Olah et al. 2017: the image is
            ``sigmoid(M · irfft2(S ⊙ w(f)))`` with a spectrum ``S`` scaled by
            ``w(f) = 1 / max(f, 1 / max(H, W))`` (every frequency gets the same
            effective learning rate) and, for RGB, the colour decorrelation matrix
            ``M``.
        jitter: largest random translation per step, in pixels (0: none).
        scales: scale factors drawn uniformly per step and image (``(1.0,)``: none).
        degrees: largest random rotation per step, in degrees (0: none).
        tv: weight of the total-variation penalty (a frequency penalty).
        l2: weight of the penalty ``mean((x - 0.5)^2)``.
        blur_every: blur the pixel image with a Gaussian every this many steps
            (0: never), as Yosinski et al. 2015 do; only for ``param="pixel"``.
        blur_sigma: the blur's standard deviation in pixels.
    """

    param: Literal["pixel", "fourier"] = "pixel"
    jitter: int = 0
    scales: tuple[float, ...] = (1.0,)
    degrees: float = 0.0
    tv: float = 0.0
    l2: float = 0.0
    blur_every: int = 0
    blur_sigma: float = 1.0

    def __post_init__(self) -> None:
        if self.param not in ("pixel", "fourier"):
            raise ValueError(
                f"Recipe: param must be 'pixel' or 'fourier', got {self.param!r}"
            )
        if not isinstance(self.jitter, int) or isinstance(self.jitter, bool):
            raise ValueError(
                "Recipe: jitter is a number of pixels and must be an int, got"
                f" {self.jitter!r}"
            )
        if (
            self.jitter < 0
            or self.degrees < 0
            or self.tv < 0
            or self.l2 < 0
            or self.blur_every < 0
        ):
            raise ValueError(
                "Recipe: jitter, degrees, tv, l2 and blur_every must be >= 0, got"
                f" {self}"
            )
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError(
                "Recipe: scales must be a non-empty tuple of positive factors, got"
                f" {self.scales!r}"
            )
        if self.blur_every and (self.param != "pixel" or self.blur_sigma <= 0):
            raise ValueError(
                "Recipe: blur_every needs param='pixel' and blur_sigma > 0"
            )

    @property
    def transforms(self) -> bool:
        """Whether any random transformation is applied."""
        return self.jitter > 0 or self.degrees > 0 or self.scales != (1.0,)


#: The recipes compared in the book, from no regularisation to the full Olah et al.
#: recipe.
RECIPES: dict[str, Recipe] = {
    "naive": Recipe(),
    "jitter": Recipe(jitter=8),
    "jitter + blur": Recipe(jitter=8, blur_every=4, blur_sigma=0.75),
    "transforms + blur": Recipe(
        jitter=8,
        scales=(0.9, 0.95, 1.0, 1.05, 1.1),
        degrees=10,
        blur_every=4,
        blur_sigma=0.75,
    ),
    "Fourier + transforms": Recipe(
        param="fourier", jitter=8, scales=(0.9, 0.95, 1.0, 1.05, 1.1), degrees=10
    ),
}


@dataclass
class FeatVis:
    """The result of an activation maximisation.

    Attributes:
        images: the optimised images, (K, C, H, W) in [0, 1], one per target.
        trace: the objective ``h`` of each image at each step, (steps, K), measured on
            the transformed image the step climbed on (penalties not included).
        objective: ``h`` of each final image, untransformed, (K,).
        targets: the channel or class indices, in the order of ``images``.
        recipe: the recipe used.
    """

    images: torch.Tensor
    trace: torch.Tensor
    objective: torch.Tensor
    targets: list[int]
    recipe: Recipe


class _StopForward(Exception):
    """Raised by the hook once the layer has run: the rest of the network is not
    needed."""


def _fourier_scale(h: int, w: int) -> torch.Tensor:
    freqs = torch.sqrt(
        torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.rfftfreq(w)[None, :] ** 2
    )
    return 1.0 / torch.clamp(freqs, min=1.0 / max(h, w))


class _Image(nn.Module):
    """The parameterised batch of images: ``forward()`` returns (K, C, H, W) in [0,
    1]."""

    def __init__(
        self, k: int, c: int, h: int, w: int, param: str, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.param, self.shape = param, (k, c, h, w)
        if param == "pixel":
            # Uniform noise around mid-grey: the starting point of the ascent.
            self.data = nn.Parameter(
                0.5 + 0.2 * (torch.rand(k, c, h, w, generator=generator) - 0.5)
            )
        else:
            spectrum = 0.01 * torch.randn(2, k, c, h, w // 2 + 1, generator=generator)
            self.data = nn.Parameter(spectrum)
            self.register_buffer("scale", _fourier_scale(h, w) * math.sqrt(h * w))

    def forward(self) -> torch.Tensor:
        if self.param == "pixel":
            return self.data
        k, c, h, w = self.shape
        spectrum = torch.complex(self.data[0], self.data[1]) * self.scale
        image = torch.fft.irfft2(spectrum, s=(h, w)) / 4.0
        if c == 3:
            image = torch.einsum(
                "ij,kjhw->kihw", _COLOR_CORRELATION_SQRT.to(image), image
            )
        return torch.sigmoid(image)

    @torch.no_grad()
    def project(self, blur_sigma: float | None) -> None:
        """After a step: blur (if asked) and clamp the pixel parameterisation to [0,
        1]."""
        if self.param != "pixel":
            return
        if blur_sigma:
            self.data.copy_(_gaussian_blur(self.data, blur_sigma))
        self.data.clamp_(0.0, 1.0)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _random_transform(
    x: torch.Tensor, recipe: Recipe, generator: torch.Generator
) -> torch.Tensor:
    """One random similarity transform per image (translation, scale, rotation),
    reflecting at edges."""
    k, _, h, w = x.shape
    angle = (torch.rand(k, generator=generator) * 2 - 1) * math.radians(recipe.degrees)
    choice = torch.randint(len(recipe.scales), (k,), generator=generator)
    scale = torch.tensor(recipe.scales, dtype=x.dtype)[choice]
    shift = torch.randint(
        -recipe.jitter, recipe.jitter + 1, (k, 2), generator=generator
    ).to(x.dtype)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(k, 2, 3, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shift[:, 0] / w, 2 * shift[:, 1] / h
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Per image: mean absolute difference of vertical plus of horizontal neighbours,
    (K,)."""
    dy = (
        (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
        if x.shape[-2] > 1
        else x.new_zeros(x.shape[0])
    )
    dx = (
        (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
        if x.shape[-1] > 1
        else x.new_zeros(x.shape[0])
    )
    return dy + dx


def _device(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of the model's first floating tensor (the CPU and float32 if
    none)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _check_common(
    size: int | tuple[int, int], steps: int, lr: float, in_channels: int, seed: int
) -> tuple[int, int]:
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or any(not isinstance(s, int) or s < 1 for s in hw):
        raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return hw  # type: ignore[return-value]


def _check_indices(indices: int | Sequence[int], what: str) -> list[int]:
    items = [indices] if isinstance(indices, int) else list(indices)
    if not items:
        raise ValueError(f"pass at least one {what} index")
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in items):
        raise ValueError(f"{what} indices must be non-negative ints, got {indices!r}")
    return items


def _ascend(
    score: Callable[[torch.Tensor], torch.Tensor],
    k: int,
    hw: tuple[int, int],
    *,
    recipe: Recipe,
    steps: int,
    lr: float,
    in_channels: int,
    seed: int,
    device: tuple[torch.device, torch.dtype],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam ascent on ``score(x) -> (K,)``: (images, trace, final objective), on CPU."""
    generator = torch.Generator().manual_seed(seed)
    place, dtype = device
    image = _Image(k, in_channels, hw[0], hw[1], recipe.param, generator)
    image = image.to(device=place, dtype=dtype)
    optimiser = torch.optim.Adam(image.parameters(), lr=lr)
    trace = torch.empty(steps, k, dtype=dtype)
    for step in range(steps):
        optimiser.zero_grad(set_to_none=True)
        x = image()
        seen = _random_transform(x, recipe, generator) if recipe.transforms else x
        h = score(seen)
        loss = -h.sum()
        if recipe.l2:
            loss = loss + recipe.l2 * ((x - 0.5) ** 2).flatten(1).mean(1).sum()
        if recipe.tv:
            loss = loss + recipe.tv * _total_variation(x).sum()
        loss.backward()
        optimiser.step()
        blur = (
            recipe.blur_sigma
            if recipe.blur_every and (step + 1) % recipe.blur_every == 0
            else None
        )
        image.project(blur)
        trace[step] = h.detach().cpu()
    with torch.no_grad():
        final = image().detach().clone()
        objective = score(final).detach().cpu()
    return final.cpu(), trace, objective


def maximise_channel(
    model: nn.Module,
    layer: nn.Module | str,
    channels: int | Sequence[int],
    *,
    recipe: Recipe = RECIPES["naive"],
    size: int | tuple[int, int] = 128,
    steps: int = 128,
    lr: float = 0.05,
    in_channels: int = 3,
    seed: int = 0,
) -> FeatVis:
    """For each channel ``k`` of ``layer``, an image that maximises its mean activation.

    Objective (Olah et al. 2017, "channel" objective):
    ``h_k(x) = (1 / hw) sum_ij A^k_ij(x)`` with ``A = layer(x)`` of shape (N, K, h, w);
    for a layer with a flat output (N, F) (a linear layer) the unit ``A[:, k]`` itself.
    Only the network up to ``layer`` is run (a hook stops the forward pass there, at the
    layer's first call), so early layers are cheap. Prefer a layer *before* its ReLU (in
    the book's MobileNet the BatchNorm ``"stage3.1.4"`` rather than the block
    ``"stage3.1"``): a channel that is silent (zero after the ReLU) on the grey starting
    image has a zero gradient there, and the ascent would never leave the start.

    Args:
        model: the network, taking images in [0, 1] of shape (N, in_channels, H, W).
        layer: a module of ``model`` or its dotted name (``"stage1.0"``).
        channels: one channel index or several; each gets its own image, optimised in
            one batch.
        recipe: parameterisation and regularisers (:data:`RECIPES` holds the book's
            presets).
        size: image size, an int or (H, W).
        steps: number of Adam steps.
        lr: Adam's learning rate.
        in_channels: channels of the input image (3 for RGB).
        seed: seeds the starting noise and the random transformations; same seed, same
            images.

    Returns:
        A :class:`FeatVis` with images (K, C, H, W), trace (steps, K) and final
        objective (K,).

    Raises:
        ValueError: unknown layer, channel index out of range, or bad sizes/steps.
        TypeError: ``model`` is not a module, or is wrapped in ``nn.DataParallel`` /
            ``DistributedDataParallel`` (pass ``model.module``: the hook and the
            gradient would run in the replicas' threads).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
        >>> result = maximise_channel(net, "0", [0, 1], size=8, steps=5, in_channels=1)
        >>> tuple(result.images.shape), tuple(result.trace.shape)
        ((2, 1, 8, 8), (5, 2))
    """
    hw = _check_common(size, steps, lr, in_channels, seed)
    check_not_parallel(model, method="maximise_channel")
    targets = _check_indices(channels, "channel")
    name, module = resolve_layer(model, layer, method="maximise_channel")
    index = torch.tensor(targets)
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple, output: object) -> None:
        captured.append(output)  # type: ignore[arg-type]
        raise _StopForward

    def score(x: torch.Tensor) -> torch.Tensor:
        captured.clear()
        try:
            model(x)
        except _StopForward:
            pass
        if not captured:
            raise ValueError(
                f"maximise_channel: layer {name!r} was not called during the forward"
                " pass"
            )
        out = captured[0]
        if not isinstance(out, torch.Tensor) or out.dim() not in (2, 4):
            shape = (
                tuple(out.shape)
                if isinstance(out, torch.Tensor)
                else type(out).__name__
            )
            raise ValueError(
                f"maximise_channel: layer {name!r} gives {shape}; need (N, K, h, w) or"
                " (N, F)"
            )
        if max(targets) >= out.shape[1]:
            raise ValueError(
                f"maximise_channel: channel {max(targets)} is out of range for layer"
                f" {name!r} with {out.shape[1]} channels"
            )
        units = out[torch.arange(len(targets), device=out.device), index.to(out.device)]
        return units.flatten(1).mean(1) if units.dim() > 1 else units

    with model_guard(model) as handles:
        handles.append(module.register_forward_hook(hook))
        images, trace, objective = _ascend(
            score,
            len(targets),
            hw,
            recipe=recipe,
            steps=steps,
            lr=lr,
            in_channels=in_channels,
            seed=seed,
            device=_device(model),
        )
    return FeatVis(
        images=images, trace=trace, objective=objective, targets=targets, recipe=recipe
    )


def maximise_class(
    model: nn.Module,
    classes: int | Sequence[int],
    *,
    recipe: Recipe = RECIPES["naive"],
    size: int | tuple[int, int] = 128,
    steps: int = 128,
    lr: float = 0.05,
    in_channels: int = 3,
    seed: int = 0,
) -> FeatVis:
    """Find, for each class ``c``, an image that maximises its logit ``y_c(x)``.

    Objective (Simonyan et al. 2014; Olah et al. 2017, "class logit" objective): the
    model's pre-softmax output ``y_c(x)``; maximising the logit rather than the softmax
    probability keeps the ascent from merely suppressing the other classes. Arguments,
    result and errors as in :func:`maximise_channel` (the model must return
    (N, classes)).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 10),
        ... )
        >>> result = maximise_class(net, [3, 7], size=16, steps=10)
        >>> bool(result.trace[-1].mean() > result.trace[0].mean())
        True
    """
    hw = _check_common(size, steps, lr, in_channels, seed)
    check_not_parallel(model, method="maximise_class")
    targets = _check_indices(classes, "class")
    index = torch.tensor(targets)

    def score(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = (
                tuple(out.shape)
                if isinstance(out, torch.Tensor)
                else type(out).__name__
            )
            raise ValueError(
                "maximise_class: the model must return (N, classes) logits, got"
                f" {shape}"
            )
        if max(targets) >= out.shape[1]:
            raise ValueError(
                f"maximise_class: class {max(targets)} is out of range for a model with"
                f" {out.shape[1]} outputs"
            )
        return out[torch.arange(len(targets), device=out.device), index.to(out.device)]

    with model_guard(model) as handles:
        images, trace, objective = _ascend(
            score,
            len(targets),
            hw,
            recipe=recipe,
            steps=steps,
            lr=lr,
            in_channels=in_channels,
            seed=seed,
            device=_device(model),
        )
    return FeatVis(
        images=images, trace=trace, objective=objective, targets=targets, recipe=recipe
    )
