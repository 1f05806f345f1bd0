"""The claims ledger: every qualitative sentence about a computed result is checked in
code.

A chapter opens one :class:`Ledger` and states each claim it makes in prose
("SmoothGrad's maps are smoother", "Grad-CAM is cheaper than VisualBackProp", "the
ranking is the same under both metrics") together with the test that makes it true::

    ledger = Ledger("part2-attribution/01-saliency-smoothgrad")
    ledger.check("SmoothGrad's maps are smoother than saliency's", rough_sg < rough_sal,
                 values={"saliency": rough_sal, "smoothgrad": rough_sg})
    ledger.check_greater("saliency is less stable than SmoothGrad",
                         instability_sal, instability_sg)

A claim that no longer holds raises :class:`ClaimError`, which fails the book's build
(cells run with ``raise_on_error``) and names the statement and its values. Claims that
rest on a sample use :meth:`Ledger.check_greater` (a bootstrap confidence interval of
the mean difference, paired when the samples are), never one draw.

When the environment variable ``XAISURVEY_CLAIMS_DIR`` is set (``make book`` sets it to
``_build/claims``), every checked claim is also written to ``<dir>/<chapter>.json``; the
Claims appendix lists them all with their values and a link to the chapter. Outside the
book (a reader's notebook) nothing is written and the checks still run.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = [
    "Ledger",
    "Claim",
    "ClaimError",
    "bootstrap_interval",
    "difference_interval",
    "load_claims",
]


class ClaimError(AssertionError):
    """A sentence of the book is no longer true of the numbers the build computed."""


@dataclass
class Claim:
    """One checked statement: where it is made, whether it holds, and the values behind
    it."""

    chapter: str
    statement: str
    holds: bool
    values: dict[str, Any] = field(default_factory=dict)
    test: str = "condition"


def _plain(value: Any) -> Any:
    """JSON-friendly: NumPy/PyTorch scalars as numbers, arrays as lists, rounded
    floats."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return (
            [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
        )
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if not math.isfinite(value) else float(f"{value:.6g}")
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def bootstrap_interval(
    samples: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The mean of ``samples`` and its percentile-bootstrap confidence interval
    ``(mean, low, high)``.

    Example:
        >>> mean, low, high = bootstrap_interval([1.0, 2.0, 3.0, 4.0])
        >>> mean, low <= mean <= high
        (2.5, True)
    """
    values = np.asarray(samples, dtype=float).reshape(-1)
    if values.size == 0:
        raise ValueError("bootstrap_interval: no samples")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_interval: level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(
        axis=1
    )
    tail = (1 - level) / 2
    return (
        float(values.mean()),
        float(np.quantile(means, tail)),
        float(np.quantile(means, 1 - tail)),
    )


def difference_interval(
    a: Sequence[float],
    b: Sequence[float],
    *,
    paired: bool = True,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of ``a - b`` with its bootstrap interval; paired (same items) or independent
    samples."""
    a_ = np.asarray(a, dtype=float).reshape(-1)
    b_ = np.asarray(b, dtype=float).reshape(-1)
    if paired:
        if a_.shape != b_.shape:
            raise ValueError(
                f"difference_interval: paired samples need equal sizes, got {a_.size}"
                f" and {b_.size}"
            )
        return bootstrap_interval(a_ - b_, level=level, resamples=resamples, seed=seed)
    rng = np.random.default_rng(seed)
    da = a_[rng.integers(0, a_.size, size=(resamples, a_.size))].mean(axis=1)
    db = b_[rng.integers(0, b_.size, size=(resamples, b_.size))].mean(axis=1)
    diffs = da - db
    tail = (1 - level) / 2
    return (
        float(a_.mean() - b_.mean()),
        float(np.quantile(diffs, tail)),
        float(np.quantile(diffs, 1 - tail)),
    )


class Ledger:
    """The claims of one chapter. ``chapter`` is the page's path under ``chapters/``
    without suffix."""

    def __init__(
        self, chapter: str, *, directory: str | os.PathLike | None = None
    ) -> None:
        if not isinstance(chapter, str) or not chapter:
            raise ValueError(
                "Ledger: chapter must be the page's path under chapters/, e.g."
                " 'part2-attribution/03-grad-cam'"
            )
        self.chapter = chapter
        self.claims: list[Claim] = []
        folder = (
            directory
            if directory is not None
            else os.environ.get("XAISURVEY_CLAIMS_DIR")
        )
        self.path = (
            Path(folder) / (chapter.replace("/", "__") + ".json") if folder else None
        )
        self._write()  # a re-executed chapter starts its record afresh

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"chapter": self.chapter, "claims": [asdict(c) for c in self.claims]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(self.path)

    def _record(
        self, statement: str, holds: bool, values: dict[str, Any], test: str
    ) -> bool:
        if not isinstance(statement, str) or not statement.strip():
            raise ValueError(
                "Ledger.check: statement must be the sentence the chapter makes"
            )
        claim = Claim(
            self.chapter, statement.strip(), bool(holds), _plain(values), test
        )
        if not claim.holds:
            raise ClaimError(
                f"{self.chapter}: the claim {claim.statement!r} no longer holds"
                f" ({test}; values {claim.values})"
            )
        self.claims.append(claim)
        self._write()
        return True

    def check(
        self, statement: str, holds: bool, *, values: dict[str, Any] | None = None
    ) -> bool:
        """Record ``statement``; raise :class:`ClaimError` unless ``holds`` is true."""
        if isinstance(holds, np.ndarray) and holds.size != 1:
            raise TypeError(
                "Ledger.check: holds must be one truth value (use .all() or .any())"
            )
        return self._record(statement, bool(holds), dict(values or {}), "condition")

    def check_greater(
        self,
        statement: str,
        a: Sequence[float],
        b: Sequence[float] | float,
        *,
        paired: bool = True,
        level: float = 0.95,
        values: dict[str, Any] | None = None,
    ) -> bool:
        """Claim that the mean of ``a`` exceeds that of ``b`` (samples, or a number):
        the bootstrap interval of the mean difference must lie above zero at
        ``level``."""
        if np.ndim(b) == 0:
            mean, low, high = bootstrap_interval(
                np.asarray(a, dtype=float) - float(b), level=level
            )
        else:
            mean, low, high = difference_interval(a, b, paired=paired, level=level)
        info = {
            "mean difference": mean,
            f"{level:.0%} interval": [low, high],
            "n": int(np.asarray(a, dtype=float).size),
            **(values or {}),
        }
        return self._record(
            statement,
            low > 0,
            info,
            f"bootstrap {level:.0%} interval of mean(a - b) above 0",
        )

    def check_less(
        self,
        statement: str,
        a: Sequence[float],
        b: Sequence[float] | float,
        *,
        paired: bool = True,
        level: float = 0.95,
        values: dict[str, Any] | None = None,
    ) -> bool:
        """Claim that the mean of ``a`` is below that of ``b``, with the same test as
        :meth:`check_greater`."""
        b_neg = -float(b) if np.ndim(b) == 0 else -np.asarray(b, dtype=float)
        return self.check_greater(
            statement,
            -np.asarray(a, dtype=float),
            b_neg,
            paired=paired,
            level=level,
            values=values,
        )

    def __len__(self) -> int:
        return len(self.claims)


def load_claims(directory: str | os.PathLike) -> list[Claim]:
    """Every claim recorded under ``directory`` (the Claims appendix reads this)."""
    claims: list[Claim] = []
    for path in sorted(Path(directory).glob("*.json")):
        payload = json.loads(path.read_text())
        claims += [Claim(**c) for c in payload.get("claims", [])]
    return claims
