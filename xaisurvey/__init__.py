"""xaisurvey: the package behind the executable survey on explaining CNNs.

Every chapter of the book starts with :func:`setup`, so that seeds, deterministic
algorithms and the figure style are the same in every chapter and in every build.
"""

from __future__ import annotations

import os
import random
from importlib.metadata import PackageNotFoundError, version as _version

import numpy as np
import torch

try:
    __version__ = _version("xaisurvey")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

from ._book import glue

__all__ = ["__version__", "setup", "glue", "DEFAULT_SEED"]

DEFAULT_SEED = 0


def setup(
    seed: int = DEFAULT_SEED, *, threads: int | None = None, style: bool = True
) -> torch.Generator:
    """Make a chapter reproducible: seed every generator, pick deterministic kernels,
    set the figure style.

    Args:
        seed: the seed for Python's ``random``, NumPy's global generator and PyTorch.
        threads: number of CPU threads for PyTorch; ``None`` keeps PyTorch's choice.
        style: apply the book's matplotlib style (small fonts, no top/right spines).

    Returns:
        A ``torch.Generator`` seeded with ``seed``, for code that wants its own stream.

    Example:
        >>> import xaisurvey, torch
        >>> g = xaisurvey.setup(0)
        >>> a = torch.rand(2, generator=g)
        >>> g = xaisurvey.setup(0)
        >>> bool((a == torch.rand(2, generator=g)).all())
        True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # Deterministic kernels where PyTorch has them; warn (not fail) where it has none.
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if threads is not None:
        torch.set_num_threads(threads)
    if style:
        _apply_style()
    _inline_figures_in_notebooks()
    return torch.Generator().manual_seed(seed)


def _inline_figures_in_notebooks() -> None:
    # In a Jupyter kernel started with MPLBACKEND=Agg, figures have no image
    # representation and glued figures would render as "<Figure size ...>" text: select
    # the inline backend there.
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and "IPKernelApp" in shell.config:
        shell.run_line_magic("matplotlib", "inline")


def _apply_style() -> None:
    import matplotlib

    matplotlib.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 120,
            "figure.figsize": (6.4, 3.6),
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": "viridis",
            "image.interpolation": "nearest",
        }
    )
