"""Shared machinery of the perturbation methods (occlusion, RISE, LIME, KernelSHAP).

A perturbation method only *runs* the model: it evaluates the target score on many
copies of each image in which some pixels are replaced by a baseline,
``x~ = b + m * (x - b)`` with a mask ``m`` in [0, 1] (1 keeps the pixel).
:func:`masked_scores` does this in chunks of ``batch_size`` rows, building each chunk's
perturbed images only when they are needed, so the extra memory is bounded by
``batch_size`` and the cost is the forward passes plus one blend per chunk.
:func:`superpixels` gives the segmentations of LIME and KernelSHAP.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ._core import (
    Target,
    check_channels,
    check_positive_int,
    model_guard,
    select_scores,
)

__all__ = [
    "check_baseline",
    "masked_scores",
    "coalition_scores",
    "superpixels",
    "check_fraction",
    "check_seed",
    "segment_means",
]


def check_fraction(
    value: object,
    name: str,
    method: str,
    *,
    low: float = 0.0,
    high: float = 1.0,
    open_low: bool = True,
    open_high: bool = False,
) -> float:
    """``value`` as a float in (``low``, ``high``] (ends as asked), else a one-line
    error."""
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
    if ok:
        ok = (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high
        )
    if not ok:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(
            f"{method}: {name} must be a number in {left}{low}, {high}{right}, got"
            f" {value!r}"
        )
    return float(value)


def check_seed(seed: object, method: str) -> int:
    """A seed for ``torch.Generator.manual_seed``: an int >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{method}: seed must be an int >= 0, got {seed!r}")
    return seed


def check_baseline(baseline: object, x: torch.Tensor, method: str) -> torch.Tensor:
    """The baseline as a tensor that broadcasts to ``x`` (N, C, H, W), on x's device and
    dtype.

    Accepts a number (every pixel and channel), or a tensor of shape (C, H, W),
    (N, C, H, W) or any shape that broadcasts to (1, C, H, W) or (N, C, H, W), e.g.
    (C, 1, 1) for one colour.
    """
    if isinstance(baseline, bool):
        raise ValueError(
            f"{method}: baseline must be a number or a tensor, got {baseline!r}"
        )
    if isinstance(baseline, (int, float)):
        if not math.isfinite(baseline):
            raise ValueError(f"{method}: baseline must be finite, got {baseline!r}")
        return torch.full((1, 1, 1, 1), float(baseline), dtype=x.dtype, device=x.device)
    if not isinstance(baseline, torch.Tensor):
        raise ValueError(
            f"{method}: baseline must be a number or a tensor, got"
            f" {type(baseline).__name__}"
        )
    b = baseline.to(device=x.device, dtype=x.dtype)
    if not bool(torch.isfinite(b).all()):
        raise ValueError(f"{method}: baseline contains NaN or infinite values")
    while b.dim() < 4:
        b = b.unsqueeze(0)
    try:
        torch.broadcast_shapes(b.shape, x.shape)
        ok = b.dim() == 4 and b.shape[0] in (1, x.shape[0])
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"{method}: baseline of shape {tuple(baseline.shape)} does not broadcast to"
            f" x's shape {tuple(x.shape)}"
        )
    return b


def masked_scores(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    target: Target,
    samples: int | list[int],
    mask_rows: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    batch_size: int,
    method: str,
    on_chunk: (
        Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None] | None
    ) = None,
) -> torch.Tensor | list[torch.Tensor]:
    """Scores of perturbed copies of every image: (N, samples), or a list of (S_n,).

    ``samples`` is the number of copies of every image, or a list with one count S_n per
    image. The copies of all images form one virtual batch (image-major: the copies of
    image 0, then of image 1, ...). For each chunk of at most ``batch_size`` rows,
    ``mask_rows(images, copies)`` (two long tensors: the image and copy index of each
    row) returns the masks, (B, 1 or C, H, W) in [0, 1] (1 keeps the pixel, 0 puts the
    baseline there); the chunk ``b + m * (x - b)`` is scored under the model guard
    without gradients. Only one chunk exists at a time.
    ``on_chunk(images, copies, masks, scores)``, if given, is called after each chunk
    (RISE accumulates its sum there while the chunk's masks exist).
    """
    n = x.shape[0]
    counts = (
        [int(samples)] * n if isinstance(samples, int) else [int(c) for c in samples]
    )
    offsets = torch.tensor([0] + counts, device=x.device).cumsum(0)
    total = int(offsets[-1])
    scores = torch.empty(total, dtype=x.dtype, device=x.device)
    full_baseline = baseline.shape[0] == n and n > 1
    with (
        model_guard(model, needs_grad=False, method=method) as handles,
        torch.no_grad(),
    ):
        check_channels(model, x.shape[1], handles, method=method)
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            rows = torch.arange(start, stop, device=x.device)
            images = torch.searchsorted(offsets, rows, right=True) - 1
            copies = rows - offsets[images]
            masks = mask_rows(images, copies)
            b = baseline[images] if full_baseline else baseline
            inputs = torch.lerp(b.expand(stop - start, *x.shape[1:]), x[images], masks)
            out = model(inputs)
            rows_target = (
                Target(indices=target.indices[images.cpu()])
                if target.indices is not None
                else target
            )
            scores[start:stop] = select_scores(
                out, rows_target, method=method, n=stop - start
            )
            if on_chunk is not None:
                on_chunk(images, copies, masks, scores[start:stop])
            del inputs, out, masks
    return (
        scores.view(n, counts[0])
        if isinstance(samples, int)
        else list(scores.split(counts))
    )


def superpixels(
    x: torch.Tensor, segments: object, n_segments: int, compactness: float, method: str
) -> torch.Tensor:
    """One segmentation per image, (N, H, W) long with labels 0..M_n - 1 (consecutive).

    ``segments``: ``"slic"`` (scikit-image's SLIC, Achanta et al. 2012, on the image in
    [0, 1] with ``n_segments`` and ``compactness``, ``start_label=0``), ``"grid"`` (a k
    x k grid of near-equal rectangles, k = round(sqrt(n_segments))), or an integer
    tensor (H, W) (used for every image) or (N, H, W) given by the user (any labels;
    relabelled consecutively).
    """
    n, _, h, w = x.shape
    if isinstance(segments, torch.Tensor):
        if (
            segments.is_floating_point()
            or segments.is_complex()
            or segments.dtype == torch.bool
        ):
            raise ValueError(
                f"{method}: segments must be an integer tensor, got dtype"
                f" {segments.dtype}"
            )
        if segments.dim() == 2:
            segments = segments.unsqueeze(0).expand(n, -1, -1)
        if (
            segments.dim() != 3
            or segments.shape[0] != n
            or tuple(segments.shape[1:]) != (h, w)
        ):
            raise ValueError(
                f"{method}: segments must have shape (H, W) = {(h, w)} or (N, H, W), "
                f"got {tuple(segments.shape)}"
            )
        out = torch.empty((n, h, w), dtype=torch.long, device=x.device)
        for i in range(n):
            _, inverse = torch.unique(segments[i].to(x.device), return_inverse=True)
            out[i] = inverse.view(h, w)
        return out
    if segments == "grid":
        k = max(1, int(round(math.sqrt(n_segments))))
        rows = torch.div(
            torch.arange(h, device=x.device) * min(k, h), h, rounding_mode="floor"
        )
        cols = torch.div(
            torch.arange(w, device=x.device) * min(k, w), w, rounding_mode="floor"
        )
        grid = rows[:, None] * min(k, w) + cols[None, :]
        return grid.unsqueeze(0).expand(n, h, w).clone()
    if segments == "slic":
        try:
            from skimage.segmentation import slic
        except ImportError as error:  # pragma: no cover - scikit-image is a dependency
            raise ImportError(
                f"{method}: segments='slic' needs scikit-image (pip install"
                " scikit-image)"
            ) from error
        out = torch.empty((n, h, w), dtype=torch.long)
        for i in range(n):
            image = (
                x[i]
                .detach()
                .to("cpu", torch.float64)
                .permute(1, 2, 0)
                .clamp(0, 1)
                .numpy()
            )
            if image.shape[2] == 1:
                labels = slic(
                    image[..., 0],
                    n_segments=n_segments,
                    compactness=compactness,
                    start_label=0,
                    channel_axis=None,
                )
            else:
                labels = slic(
                    image,
                    n_segments=n_segments,
                    compactness=compactness,
                    start_label=0,
                    channel_axis=-1,
                    convert2lab=image.shape[2] == 3,
                )
            _, inverse = torch.unique(torch.from_numpy(labels), return_inverse=True)
            out[i] = inverse.view(h, w)
        return out.to(x.device)
    raise ValueError(
        f"{method}: segments must be 'slic', 'grid' or an integer tensor (H, W) or (N,"
        f" H, W), got {segments!r}"
    )


def segment_means(x: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Each pixel set to its superpixel's mean colour, (N, C, H, W) (lime's
    ``hide_color=None``)."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        labels = segments[i].reshape(-1)
        m = int(labels.max()) + 1
        sums = torch.zeros((c, m), dtype=x.dtype, device=x.device).index_add_(
            1, labels, x[i].reshape(c, -1)
        )
        counts = torch.bincount(labels, minlength=m).to(x.dtype)
        out[i] = (sums / counts).index_select(1, labels).view(c, h, w)
    return out


def coalition_scores(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    target: Target,
    segments: torch.Tensor,
    coalitions: list[torch.Tensor],
    *,
    batch_size: int,
    method: str,
) -> list[torch.Tensor]:
    """Scores of every coalition of superpixels, one (S_n,) tensor per image.

    ``coalitions[n]`` is a (S_n, M_n) 0/1 tensor: row ``j`` keeps the superpixels ``m``
    of image ``n`` with ``z_jm = 1`` (label ``m`` in ``segments[n]``) and puts the
    baseline on the others. The rows of all images form one virtual batch, scored
    ``batch_size`` rows at a time.
    """
    n, _, h, w = x.shape
    counts = [int(z.shape[0]) for z in coalitions]
    widest = max(int(z.shape[1]) for z in coalitions)
    padded = torch.zeros((n, max(counts), widest), dtype=x.dtype, device=x.device)
    for i, z in enumerate(coalitions):
        padded[i, : z.shape[0], : z.shape[1]] = z.to(device=x.device, dtype=x.dtype)
    labels = segments.reshape(n, h * w).to(x.device)

    def mask_rows(images: torch.Tensor, copies: torch.Tensor) -> torch.Tensor:
        keep = padded[images, copies]  # (B, M)
        return keep.gather(1, labels[images]).view(-1, 1, h, w)

    return masked_scores(
        model,
        x,
        baseline,
        target,
        counts,
        mask_rows,
        batch_size=batch_size,
        method=method,
    )


def prepare_superpixels(
    x: torch.Tensor,
    segments: object,
    n_segments: object,
    compactness: object,
    baseline: object,
    method: str,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Segmentations (N, H, W), the baseline (broadcasting to x), each image's
    superpixel count."""
    n_segments = check_positive_int(n_segments, "n_segments", method)
    compactness = check_fraction(
        compactness, "compactness", method, high=float("inf"), open_high=True
    )
    segs = superpixels(x, segments, n_segments, compactness, method)
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(
                f"{method}: baseline must be 'mean', a number or a tensor, got"
                f" {baseline!r}"
            )
        base = segment_means(x, segs)
    else:
        base = check_baseline(baseline, x, method)
    counts = [int(segs[i].max()) + 1 for i in range(x.shape[0])]
    return segs, base, counts


def paint(
    values: list[torch.Tensor], segments: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Per-superpixel values (one (M_n,) tensor per image) painted on their pixels,
    (N, H, W)."""
    return torch.stack([v.to(dtype)[s] for v, s in zip(values, segments)])
