"""KernelSHAP on superpixels (Lundberg and Lee, 2017)."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ._core import (
    TargetLike,
    as_target,
    check_input,
    check_positive_int,
    warn_zero_maps,
)
from ._perturb import check_seed, coalition_scores, paint, prepare_superpixels

__all__ = [
    "kernel_shap",
    "kernel_shap_samples",
    "shapley_kernel",
    "constrained_least_squares",
]

#: Enumerate every coalition (exact Shapley values) when 2^M is at most this and
#: ``samples``.
_MAX_ENUMERATION = 2**16


def shapley_kernel(z: torch.Tensor) -> torch.Tensor:
    """The Shapley kernel ``pi(z) = (M - 1) / (C(M, |z|) |z|
    (M - |z|))`` of rows ``z`` (S, M), float64; ``inf`` for the empty and the full
    coalition (the paper's Theorem 2)."""
    m = z.shape[1]
    k = z.sum(dim=1).round().long()
    out = torch.full((z.shape[0],), math.inf, dtype=torch.float64)
    for size in range(1, m):
        out[k.cpu() == size] = (m - 1) / (math.comb(m, size) * size * (m - size))
    return out.to(z.device)


def kernel_shap_samples(
    superpixels: int, samples: int, seed: int = 0
) -> tuple[torch.Tensor, bool]:
    """KernelSHAP's coalitions for one image: ``(z (S, M) float32, exact)``.

    When ``2^M <= samples`` (and ``2^M <= 65536``) every coalition is listed
    (``exact=True``; S = 2^M, ordered by size) and the regression uses the Shapley
    kernel as weights. Otherwise (``exact=False``; S = ``samples``): row 0 keeps
    everything, row 1 nothing (the two constraints), and each other row draws a size
    ``k`` in 1..M-1 with probability proportional to ``(M - 1) / (k (M - k))`` and then
    ``k`` superpixels uniformly: the coalitions are then drawn in proportion to the
    Shapley kernel, so the regression weights them equally (captum's ``KernelShap``
    sampler; the shap package samples the same distribution but also enumerates the
    smallest and largest sizes when the budget allows). Draws come from a
    ``torch.Generator`` seeded with ``seed``; duplicates are kept.
    """
    m = superpixels
    if m <= 16 and 2**m <= min(samples, _MAX_ENUMERATION):
        rows = sorted(
            itertools.product((0, 1), repeat=m), key=lambda r: (sum(r), r[::-1])
        )
        z = torch.tensor(rows, dtype=torch.float32)
        return torch.cat([z[-1:], z[:1], z[1:-1]]), True
    generator = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.zeros((samples, m))
    z[0] = 1.0
    if m > 1 and samples > 2:
        sizes = torch.arange(1, m, dtype=torch.float64)
        probs = (m - 1) / (sizes * (m - sizes))
        k = (
            torch.multinomial(probs, samples - 2, replacement=True, generator=generator)
            + 1
        )
        order = (
            torch.rand((samples - 2, m), generator=generator)
            .argsort(dim=1)
            .argsort(dim=1)
        )
        z[2:] = (order < k[:, None]).float()
    return z, False


def constrained_least_squares(
    z: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    full: torch.Tensor,
    empty: torch.Tensor,
) -> torch.Tensor:
    """Shapley values from scored coalitions: the weighted least squares fit of
    ``y_j ~ S(empty) + z_j . phi`` subject to ``sum(phi) = S(full) - S(empty)`` (the
    paper's infinite weights of the two end points, imposed exactly by eliminating the
    last coefficient, as the shap package does); float64.

    ``z`` (S, M), ``y`` (S,), ``weights`` (S,) exclude the two end points.
    Rank-deficient systems (too few distinct coalitions) get the minimum-norm solution.
    """
    z, y, w = z.double(), y.double(), weights.double()
    m = z.shape[1]
    delta = (full - empty).double()
    if m == 1:
        return delta.reshape(1)
    target = y - empty.double() - z[:, -1] * delta
    design = z[:, :-1] - z[:, -1:]
    root = w.sqrt()[:, None]
    head = torch.linalg.pinv(root * design) @ (root[:, 0] * target)
    return torch.cat([head, (delta - head.sum()).reshape(1)])


def kernel_shap(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    samples: int = 1000,
    segments: str | torch.Tensor = "slic",
    n_segments: int = 50,
    compactness: float = 10.0,
    baseline: str | float | torch.Tensor = "mean",
    batch_size: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """KernelSHAP: Shapley values of the superpixels, estimated by a weighted
    regression.

    Paper: S. M. Lundberg and S.-I. Lee, "A unified approach to interpreting model
    predictions", NeurIPS 2017 (section 4.1, Theorem 2: the Shapley kernel).

    Algorithm: the image is cut into M superpixels (the "players"); a coalition ``z`` in
    {0, 1}^M is scored as the image with the superpixels outside it set to the baseline.
    The Shapley values ``phi`` minimise ``sum_z pi(z) (S(z) - phi_0 - z . phi)^2`` with
    the Shapley kernel ``pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|))``
    (:func:`~xaisurvey.attribution.kernel_shap.shapley_kernel`), whose infinite weights
    at the empty and the full coalition force ``phi_0 = S(empty)`` and
    ``sum phi = S(x) - S(empty)`` (efficiency); these are imposed exactly
    (:func:`~xaisurvey.attribution.kernel_shap.constrained_least_squares`). With
    ``2^M <= samples`` every coalition is listed and the result is the exact Shapley
    value; otherwise coalitions are sampled from the kernel
    (:func:`~xaisurvey.attribution.kernel_shap.kernel_shap_samples`) and weighted
    equally.

    Conventions: no regularisation (the shap package's ``l1_reg="auto"`` may select
    features first; captum fits an unregularised linear regression with weight 10^6 at
    the two end points, so its efficiency holds to about 10^-6 relative; ours holds
    exactly). An "off" superpixel becomes its mean colour by default
    (``baseline="mean"``). Segmentation and the other options as in
    :func:`~xaisurvey.attribution.lime`.

    Args:
        model, x, target: as in :func:`~xaisurvey.attribution.occlusion`.
        samples: coalitions scored per image, the two end points included (>= 2); at
            least M + 1 are needed for a unique solution when sampling (fewer:
            minimum-norm solution and a warning).
        segments, n_segments, compactness, baseline: as in
            :func:`~xaisurvey.attribution.lime`.
        batch_size: perturbed images per forward pass; bounds the extra memory.
        seed: seed of the sampler (the same for every image of the batch).

    Returns:
        (N, H, W) maps, piecewise constant on the superpixels; for each image the values
        of its superpixels sum to ``S(x) - S(baseline)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(
        ...     nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        ... )
        >>> x = torch.rand(2, 3, 16, 16)
        >>> kernel_shap(net, x, 0, samples=20, segments="grid", n_segments=4).shape
        torch.Size([2, 16, 16])
    """
    import warnings

    method = "kernel_shap"
    x = check_input(x, model, method=method)
    samples = check_positive_int(samples, "samples", method, minimum=2)
    batch_size = check_positive_int(batch_size, "batch_size", method)
    seed = check_seed(seed, method)
    target_ = as_target(target, x.shape[0], method=method)
    segs, base, counts = prepare_superpixels(
        x, segments, n_segments, compactness, baseline, method
    )
    drawn = [kernel_shap_samples(m, samples, seed) for m in counts]
    coalitions = [z for z, _ in drawn]
    scores = coalition_scores(
        model, x, base, target_, segs, coalitions, batch_size=batch_size, method=method
    )
    values = []
    for (z, exact), y in zip(drawn, scores):
        z = z.to(y.device)
        if not exact and samples - 2 < z.shape[1] - 1:
            warnings.warn(
                f"{method}: {samples} samples are too few for {z.shape[1]} superpixels "
                f"(need at least {z.shape[1] + 1}); the solution is not unique",
                stacklevel=2,
            )
        weights = (
            shapley_kernel(z[2:])
            if exact
            else torch.ones(z.shape[0] - 2, dtype=torch.float64, device=y.device)
        )
        values.append(constrained_least_squares(z[2:], y[2:], weights, y[0], y[1]))
    return warn_zero_maps(
        paint(values, segs, x.dtype),
        method=method,
        why="the target score did not change when superpixels were removed",
    )
