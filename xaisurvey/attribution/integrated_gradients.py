"""Integrated Gradients (Sundararajan, Taly and Yan, 2017): gradients integrated along a
straight path.

The module also holds the pieces the other path methods share: :func:`path_rule` (the
quadrature nodes and weights, with captum's rule names), :func:`path_baseline` (the
reference image: black, blurred, uniform noise or a tensor) and :func:`completeness_gap`
(the sum of the attributions minus the output difference they should add up to).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._core import (
    Target,
    TargetLike,
    as_target,
    batched_scores,
    check_channels,
    check_choice,
    check_input,
    check_positive_int,
    model_guard,
    select_scores,
)
from .normalize import reduce_channels

__all__ = [
    "integrated_gradients",
    "path_rule",
    "path_baseline",
    "path_integral",
    "completeness_gap",
    "RULES",
    "BASELINES",
]

#: Quadrature rules, with captum's names (``captum.attr._utils.approximation_methods``).
RULES = (
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gausslegendre",
)
#: Named baselines; a tensor is accepted too.
BASELINES = ("black", "blur", "uniform")


def path_rule(
    rule: str, steps: int, *, method: str = "integrated_gradients"
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha_k`` in [0, 1] and weights ``w_k`` of a rule for
    ``int_0^1 g(alpha) d alpha``.

    * ``"riemann_left"``: ``alpha_k = k/n``, ``w_k = 1/n`` (k = 0..n-1);
    * ``"riemann_right"``: ``alpha_k = (k+1)/n``, ``w_k = 1/n``;
    * ``"riemann_middle"``: ``alpha_k = (k+1/2)/n``, ``w_k = 1/n``;
    * ``"riemann_trapezoid"``: ``alpha_k = k/(n-1)``,
      ``w = (1/2, 1, ..., 1, 1/2) / (n-1)``, the trapezoidal rule, exact for linear
      integrands. (captum 0.9 uses the same nodes but the weights
      ``(1/2, 1, ..., 1, 1/2) / n``, which sum to ``1 - 1/n``: its trapezoid
      attributions are ours times ``(n-1)/n``; see the tests.)
    * ``"gausslegendre"``: Gauss-Legendre nodes and weights mapped from [-1, 1] to [0,
      1], exact for polynomials of degree ``2n - 1`` (captum's default).

    The Riemann rules need ``steps >= 2`` (as in captum), Gauss-Legendre ``steps >= 1``.
    The weights sum to 1 (up to rounding) for every rule.

    Example:
        >>> alphas, weights = path_rule("riemann_middle", 4)
        >>> alphas.tolist(), weights.tolist()
        ([0.125, 0.375, 0.625, 0.875], [0.25, 0.25, 0.25, 0.25])
    """
    check_choice(rule, RULES, "rule", method)
    minimum = 1 if rule == "gausslegendre" else 2
    n = check_positive_int(steps, "steps", method, minimum=minimum)
    k = np.arange(n, dtype=np.float64)
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if rule == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return k / (n - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (k + offset) / n, np.full(n, 1.0 / n)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), kernel radius ceil(3 sigma), replicated
    borders."""
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def path_baseline(
    x: torch.Tensor,
    baseline: str | float | torch.Tensor,
    *,
    blur_sigma: float = 10.0,
    seed: int = 0,
    method: str = "integrated_gradients",
) -> torch.Tensor:
    """The reference image of every image of ``x``, shape (N, C, H, W), on x's device
    and dtype.

    * ``"black"``: zeros (the paper's choice for images);
    * ``"blur"``: each image blurred with a Gaussian of standard deviation
      ``blur_sigma`` pixels (kernel radius ``ceil(3 sigma)``, borders replicated), the
      "blurred" baseline of Sturmfels, Lundberg and Lee (Distill, 2020): it keeps
      colours and removes edges;
    * ``"uniform"``: one image of uniform noise in [0, 1) drawn from a generator seeded
      with ``seed`` (the same noise for every image, so an image's result does not
      depend on the batch);
    * a number: a constant image; a tensor of shape (C, H, W), (1, C, H, W) or
      (N, C, H, W).

    Raises:
        ValueError: an unknown name, a tensor of another shape, NaN, or
            ``blur_sigma <= 0``.
    """
    if isinstance(baseline, str):
        check_choice(baseline, BASELINES, "baseline", method)
        if baseline == "black":
            return x.new_zeros((1,) + tuple(x.shape[1:])).expand_as(x)
        if baseline == "uniform":
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
            noise = torch.rand(x.shape[1:], generator=generator, dtype=torch.float64)
            return noise.to(device=x.device, dtype=x.dtype).expand_as(x)
        if (
            isinstance(blur_sigma, bool)
            or not isinstance(blur_sigma, (int, float))
            or not 0 < blur_sigma < math.inf
        ):
            raise ValueError(
                f"{method}: blur_sigma must be a number > 0 (pixels), got"
                f" {blur_sigma!r}"
            )
        with torch.no_grad():
            return _gaussian_blur(x.detach(), float(blur_sigma))
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        if not math.isfinite(baseline):
            raise ValueError(f"{method}: baseline must be finite, got {baseline!r}")
        return torch.full_like(x, float(baseline))
    if not isinstance(baseline, torch.Tensor):
        raise ValueError(
            f"{method}: baseline must be one of"
            f" {', '.join(repr(b) for b in BASELINES)}, a number or a tensor, got"
            f" {type(baseline).__name__}"
        )
    b = baseline.detach().to(device=x.device, dtype=x.dtype)
    if b.dim() == 3:
        b = b.unsqueeze(0)
    if (
        b.dim() != 4
        or tuple(b.shape[1:]) != tuple(x.shape[1:])
        or b.shape[0] not in (1, x.shape[0])
    ):
        raise ValueError(
            f"{method}: baseline must have shape (C, H, W), (1, C, H, W) or (N, C, H,"
            f" W) = {tuple(x.shape)}, got {tuple(baseline.shape)}"
        )
    if not bool(torch.isfinite(b).all()):
        raise ValueError(f"{method}: baseline contains NaN or infinite values")
    return b.expand_as(x)


def completeness_gap(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    attributions: torch.Tensor,
    baseline: torch.Tensor,
    *,
    batch_size: int = 64,
    method: str = "completeness_gap",
) -> torch.Tensor:
    """``sum_i A_i(x) - (F(x) - F(x'))`` per image, shape (N,): how far ``attributions``
    miss completeness.

    ``baseline`` is the tensor of references (N, C, H, W) (see :func:`path_baseline`).
    For Integrated Gradients the gap is the integration error (zero for the exact
    integral); for DeepLIFT on a ReLU network it is zero up to rounding
    (summation-to-delta). Two forward passes without gradients, ``batch_size`` images
    each at most.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
        >>> x = torch.rand(1, 3, 2, 2)
        >>> a = integrated_gradients(net, x, 0, steps=2, rule="riemann_trapezoid")
        >>> bool(completeness_gap(net, x, 0, a, torch.zeros_like(x)).abs().max() < 1e-5)
        True
    """
    x = check_input(x, model, method=method)
    batch_size = check_positive_int(batch_size, "batch_size", method)
    target_ = as_target(target, x.shape[0], method=method)
    if tuple(attributions.shape) != tuple(x.shape):
        raise ValueError(
            f"{method}: attributions must have the shape of x, {tuple(x.shape)}, "
            f"got {tuple(attributions.shape)}"
        )
    baseline = path_baseline(x, baseline, method=method)
    with model_guard(model, method=method, needs_grad=False):
        both = batched_scores(
            model,
            torch.cat([x, baseline]),
            (
                target_
                if target_.is_callable
                else Target(indices=torch.cat([target_.indices, target_.indices]))
            ),
            batch_size=batch_size,
            method=method,
        )
    n = x.shape[0]
    delta = both[:n] - both[n:]
    return attributions.detach().reshape(n, -1).sum(dim=1).to(delta.dtype) - delta


def path_integral(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    baselines: torch.Tensor,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    *,
    per_point: bool = False,
    internal_batch_size: int = 64,
    method: str = "integrated_gradients",
) -> torch.Tensor:
    """``sum_k w_k (x_n - b) * dF(b + alpha_k (x_n - b)) / dx`` for every image n,
    (N, C, H, W).

    The quadrature loop of the path methods. ``b`` is ``baselines[n]`` (one baseline per
    image, Integrated Gradients) or, with ``per_point=True``, ``baselines[k]`` (one
    baseline per point, shared by the images: expected gradients). Point k of image n is
    row ``k * N + n``; rows go through the model ``internal_batch_size`` at a time, so
    at most that many interpolated images, their graph and their gradients exist at
    once. ``x`` and ``target`` must be checked (``target`` holds one entry per image);
    one model guard covers the loop.

    Raises:
        ValueError: the target score does not depend on the input (no path in the
            graph).
    """
    n, points = x.shape[0], alphas.shape[0]
    total = torch.zeros_like(x)
    rows = n * points
    # One baseline per image: (x - b) is the same at every point and is applied once at
    # the end.
    diff_all = None if per_point else x - baselines
    weight_list = weights.tolist()
    with model_guard(model, method=method) as handles:
        check_channels(model, x.shape[1], handles, method=method)
        for start in range(0, rows, internal_batch_size):
            stop = min(start + internal_batch_size, rows)
            first, last = start // n, (stop - 1) // n
            if first == last and not per_point:
                # The chunk lies within one point: images lo..hi-1, plain slices
                # (no copies).
                lo, hi = start - first * n, stop - first * n
                inputs = torch.add(
                    baselines[lo:hi], diff_all[lo:hi], alpha=float(alphas[first])
                )
                target_rows = target.rows(lo, hi)
            else:
                r = torch.arange(start, stop, device=x.device)
                image, point = r % n, r // n
                base = baselines[point] if per_point else baselines[image]
                diff = x[image] - base if per_point else diff_all[image]
                inputs = torch.addcmul(base, diff, alphas[point].view(-1, 1, 1, 1))
                target_rows = _rows_target(target, image)
            inputs.requires_grad_(True)
            output = model(inputs)
            scores = select_scores(output, target_rows, method=method, n=stop - start)
            if not scores.requires_grad:
                raise ValueError(
                    f"{method}: the target score does not depend on the input x (no"
                    " path in the graph)"
                )
            (grad,) = torch.autograd.grad(scores.sum(), inputs)
            if first == last and not per_point:
                total[lo:hi].add_(grad, alpha=weight_list[first])
            elif per_point:
                # not in place: the gradient may be an expanded view (e.g. of a sum over
                # the pixels)
                total.index_add_(
                    0, image, grad * diff * weights[point].view(-1, 1, 1, 1)
                )
            else:
                total.index_add_(0, image, grad * weights[point].view(-1, 1, 1, 1))
            del output, scores, grad, inputs
    return total if per_point else total.mul_(diff_all)


def _rows_target(target: Target, image: torch.Tensor) -> Target:
    return (
        target
        if target.indices is None
        else Target(indices=target.indices[image.cpu()])
    )


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    baseline: str | float | torch.Tensor = "black",
    steps: int = 50,
    rule: str = "gausslegendre",
    internal_batch_size: int = 64,
    blur_sigma: float = 10.0,
    seed: int = 0,
    return_gap: bool = False,
    reduce: str | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrated Gradients: the mean gradient on the path from a baseline, times x - b.

    Paper: M. Sundararajan, A. Taly and Q. Yan, "Axiomatic Attribution for Deep
    Networks" (ICML 2017).

    Formula: ``IG_i(x) = (x_i - x'_i) * int_0^1 dF(x' + a (x - x')) / dx_i
    da``, approximated by ``(x_i - x'_i) * sum_k w_k dF(x' + a_k (x - x')) / dx_i`` with
    the nodes and weights of :func:`path_rule`. Completeness:
    ``sum_i IG_i(x) = F(x) - F(x')`` for the exact integral; the quadrature leaves a
    gap, returned with ``return_gap=True`` (it shrinks as ``steps`` grows).

    Conventions (as captum's ``IntegratedGradients`` with ``multiply_by_inputs=True``):
    the defaults ``steps=50, rule="gausslegendre"`` are captum's; the rule names are
    captum's; ``"riemann_trapezoid"`` uses the correct trapezoid weights (captum's are
    ``(n-1)/n`` of them, see :func:`path_rule`). The attribution is signed and in the
    units of the score.

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: class index, one per image, or a callable ``output -> (N,)`` scores
            (applied to chunks of interpolated images, so it must score each row on its
            own).
        baseline: ``"black"`` (zeros, default), ``"blur"`` (Gaussian blur,
            ``blur_sigma`` pixels), ``"uniform"`` (one seeded uniform-noise image), a
            number, or a tensor (C, H, W) / (1, C, H, W) / (N, C, H, W); see
            :func:`path_baseline`.
        steps: number of points n on the path (>= 2 for Riemann rules, >= 1 for
            Gauss-Legendre).
        rule: one of :data:`RULES`.
        internal_batch_size: interpolated images per forward and backward pass (>= 1).
            It bounds the extra memory: only that many interpolated images and their
            gradients exist at once (captum's ``internal_batch_size`` cannot go below
            the batch size N; this one can). The result does not depend on it.
        blur_sigma: standard deviation in pixels of the ``"blur"`` baseline.
        seed: seed of the ``"uniform"`` baseline.
        return_gap: also return the completeness gap ``sum_i IG_i - (F(x) - F(x'))`` per
            image, (N,), at the cost of two forward passes without gradients.
        reduce: ``None`` keeps (N, C, H, W); a ``reduce_channels`` name gives (N, H, W).

    Returns:
        Attributions (N, C, H, W) (or (N, H, W) with ``reduce``) on x's device and
        dtype; with ``return_gap`` a tuple ``(attributions, gap)``.

    Raises:
        ValueError: a bad option (one line naming it), or a score that does not depend
            on x.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 2, 3),
        ...     torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ... )
        >>> a, gap = integrated_gradients(
        ...     net, torch.rand(2, 3, 8, 8), 0, steps=8, return_gap=True
        ... )
        >>> a.shape, gap.shape
        (torch.Size([2, 3, 8, 8]), torch.Size([2]))
    """
    method = "integrated_gradients"
    x = check_input(x, model, method=method)
    internal_batch_size = check_positive_int(
        internal_batch_size, "internal_batch_size", method
    )
    if not isinstance(return_gap, bool):
        raise ValueError(
            f"{method}: return_gap must be True or False, got {return_gap!r}"
        )
    alphas_np, weights_np = path_rule(rule, steps, method=method)
    target_ = as_target(target, x.shape[0], method=method)
    base = path_baseline(x, baseline, blur_sigma=blur_sigma, seed=seed, method=method)
    alphas = torch.as_tensor(alphas_np, dtype=x.dtype, device=x.device)
    weights = torch.as_tensor(weights_np, dtype=x.dtype, device=x.device)
    attributions = path_integral(
        model,
        x,
        target_,
        base,
        alphas,
        weights,
        internal_batch_size=internal_batch_size,
        method=method,
    )
    result = attributions if reduce is None else reduce_channels(attributions, reduce)
    if not return_gap:
        return result
    gap = completeness_gap(
        model,
        x,
        target_,
        attributions,
        base,
        batch_size=internal_batch_size,
        method=method,
    )
    return result, gap
