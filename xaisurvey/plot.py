"""Plotting at the edge of the package: tensors become arrays, maps become overlays,
lists become grids.

Conventions: images are (C, H, W) float tensors in [0, 1] (or (H, W) for a single
channel); heat maps are (h, w) tensors of any range, scaled to [0, 1] by
:func:`normalise_map` before they are coloured. These are the only functions of the
package that return NumPy arrays or figures.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["to_display", "normalise_map", "blend", "overlay", "image_grid"]

ImageLike = Union[torch.Tensor, np.ndarray]


def _as_tensor(x: ImageLike, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{what} must be a torch.Tensor or a NumPy array, got {type(x).__name__}"
        )
    if x.is_complex():
        raise TypeError(f"{what} must be real-valued, got dtype {x.dtype}")
    return x.detach().cpu().float()


def normalise_map(heatmap: ImageLike) -> torch.Tensor:
    """Scale a map to [0, 1]: ``(h - min) / (max - min)``; a flat map gives zeros, never
    NaN.

    Example:
        >>> normalise_map(torch.tensor([[1.0, 3.0]])).tolist()
        [[0.0, 1.0]]
    """
    h = _as_tensor(heatmap, "heatmap")
    if not torch.isfinite(h).all():
        raise ValueError("heatmap contains NaN or infinite values")
    if h.numel() == 0:
        raise ValueError("heatmap is empty")
    low, high = h.min(), h.max()
    if high - low <= 1e-12 * max(1.0, float(high.abs())):
        return torch.zeros_like(h)
    return (h - low) / (high - low)


def to_display(image: ImageLike, *, normalise: bool = False) -> np.ndarray:
    """Turn a (C, H, W) image in [0, 1] into an array ``imshow`` shows as is.

    Args:
        image: (3, H, W) RGB, (1, H, W) or (H, W) grey, tensor or array, values in [0,
            1].
        normalise: scale the values to [0, 1] first (per image, :func:`normalise_map`);
            without it, values outside [0, 1] are an error (usually a normalised model
            input).

    Returns:
        (H, W, 3) for RGB, (H, W) for grey; float32 in [0, 1].

    Example:
        >>> to_display(torch.zeros(3, 4, 5)).shape
        (4, 5, 3)
    """
    x = _as_tensor(image, "image")
    if x.dim() == 3 and x.shape[0] == 1:
        x = x[0]
    if not (x.dim() == 2 or (x.dim() == 3 and x.shape[0] == 3)):
        raise ValueError(
            f"image must be (3, H, W), (1, H, W) or (H, W), got shape {tuple(x.shape)}"
        )
    if normalise:
        x = normalise_map(x)
    elif not torch.isfinite(x).all():
        raise ValueError("image contains NaN or infinite values")
    elif x.numel() and (x.min() < -1e-6 or x.max() > 1 + 1e-6):
        raise ValueError(
            f"image values must lie in [0, 1], got [{float(x.min()):.3g},"
            f" {float(x.max()):.3g}]; undo the input normalisation or pass"
            " normalise=True"
        )
    x = x.clamp(0, 1)
    array = x.permute(1, 2, 0) if x.dim() == 3 else x
    return array.numpy().astype(np.float32)


def blend(
    image: ImageLike, heatmap: ImageLike, *, alpha: float = 0.5, cmap: str = "jet"
) -> np.ndarray:
    """The overlay as an array: ``(1 - alpha) * image + alpha *
    cmap(normalise_map(heatmap))``.

    A heat map smaller than the image is upsampled bilinearly (``align_corners=False``);
    grey images are repeated to RGB.

    Args:
        image: (C, H, W) in [0, 1] (see :func:`to_display`).
        heatmap: (h, w), any range.
        alpha: weight of the heat map, in [0, 1].
        cmap: a matplotlib colormap name.

    Returns:
        (H, W, 3) float32 in [0, 1].

    Example:
        >>> blend(torch.ones(3, 2, 2), torch.zeros(2, 2), alpha=0.0)[0, 0].tolist()
        [1.0, 1.0, 1.0]
    """
    import matplotlib

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    base = to_display(image)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    h = _as_tensor(heatmap, "heatmap")
    if h.dim() == 3 and h.shape[0] == 1:
        h = h[0]
    if h.dim() != 2:
        raise ValueError(f"heatmap must be (h, w), got shape {tuple(h.shape)}")
    if tuple(h.shape) != base.shape[:2]:
        h = F.interpolate(
            h[None, None], size=base.shape[:2], mode="bilinear", align_corners=False
        )[0, 0]
    if cmap not in matplotlib.colormaps:
        raise ValueError(
            "cmap must be a Matplotlib colormap name (e.g. 'jet', 'viridis'), got"
            f" {cmap!r}"
        )
    colours = matplotlib.colormaps[cmap](normalise_map(h).numpy())[..., :3]
    return ((1 - alpha) * base + alpha * colours).astype(np.float32)


def overlay(
    ax,
    image: ImageLike,
    heatmap: ImageLike,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    title: str | None = None,
):
    """Draw :func:`blend` on a matplotlib axis ``ax`` (axis lines off); returns the
    ``AxesImage``.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> _ = overlay(ax, torch.rand(3, 8, 8), torch.rand(2, 2), title="map")
        >>> plt.close(fig)
    """
    shown = ax.imshow(
        blend(image, heatmap, alpha=alpha, cmap=cmap), interpolation="nearest"
    )
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return shown


def image_grid(
    images: Sequence[ImageLike] | torch.Tensor,
    titles: Sequence[str] | None = None,
    *,
    ncols: int | None = None,
    cell: float = 1.6,
    normalise: bool = False,
    cmap: str = "gray",
    suptitle: str | None = None,
):
    """A figure showing images in a grid, each with an optional title.

    Args:
        images: a (N, C, H, W) tensor or a list of (C, H, W) / (H, W) images in [0, 1].
        titles: one title per image (or ``None``).
        ncols: columns (default: all in one row up to 8).
        cell: the side of one cell, in inches.
        normalise: scale each image to [0, 1] (for feature maps or signed maps).
        cmap: the colormap for one-channel images.
        suptitle: a title for the whole figure.

    Returns:
        The ``matplotlib.figure.Figure`` (unused cells hidden).

    Example:
        >>> fig = image_grid(torch.rand(3, 3, 8, 8), ["a", "b", "c"])
        >>> len([a for a in fig.axes if a.get_visible()])
        3
    """
    import matplotlib.pyplot as plt

    items = list(images)
    if not items:
        raise ValueError("image_grid needs at least one image")
    if titles is not None and len(titles) != len(items):
        raise ValueError(f"got {len(titles)} titles for {len(items)} images")
    ncols = min(len(items), 8) if ncols is None else ncols
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    nrows = math.ceil(len(items) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(cell * ncols, cell * nrows + (0.3 if suptitle else 0)),
        squeeze=False,
    )
    for i, ax in enumerate(axes.flat):
        if i >= len(items):
            ax.set_visible(False)
            continue
        array = to_display(items[i], normalise=normalise)
        ax.imshow(
            array,
            cmap=cmap if array.ndim == 2 else None,
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
