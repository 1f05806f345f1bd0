"""Normalisation helpers: per image, flat maps -> zeros, never NaN."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xaisurvey.attribution import max_abs, minmax, reduce_channels


def test_minmax_per_image_by_hand() -> None:
    maps = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[4.0, 4.0], [4.0, 4.0]], [[-1.0, 0.0], [0.0, 1.0]]])
    expected = torch.tensor([[[0.0, 0.5], [0.25, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.5], [0.5, 1.0]]])
    assert torch.equal(minmax(maps), expected)
    # eps as in pytorch-grad-cam: (m - min) / (max - min + eps)
    assert torch.allclose(minmax(maps[:1], eps=1.0), (maps[:1] - 1) / 5)


def test_max_abs_and_reductions_by_hand() -> None:
    a = torch.tensor([[[[3.0, -1.0]], [[-4.0, 0.0]], [[0.0, 2.0]]]])  # (1, 3, 1, 2)
    assert torch.equal(reduce_channels(a, "max_abs"), torch.tensor([[[4.0, 2.0]]]))
    assert torch.equal(reduce_channels(a, "sum"), torch.tensor([[[-1.0, 1.0]]]))
    assert torch.equal(reduce_channels(a, "sum_abs"), torch.tensor([[[7.0, 3.0]]]))
    assert torch.allclose(reduce_channels(a, "mean"), torch.tensor([[[-1 / 3, 1 / 3]]]))
    assert torch.equal(reduce_channels(a, "l2"), torch.tensor([[[5.0, 5.0**0.5]]]))
    assert torch.equal(max_abs(a), a / 4)
    assert torch.equal(max_abs(torch.zeros(2, 3, 3)), torch.zeros(2, 3, 3))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12), st.floats(-1e6, 1e6, allow_nan=False))
def test_minmax_range_and_flat_maps(values, constant) -> None:
    maps = torch.tensor([values, [constant] * len(values)], dtype=torch.float64)
    out = minmax(maps)
    assert torch.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
    assert torch.equal(out[1], torch.zeros(len(values), dtype=torch.float64))
    if max(values) > min(values):
        assert out[0].max() == 1 and out[0].min() == 0


def test_errors_name_the_problem() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        minmax(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch dimension"):
        minmax(torch.ones(3))
    with pytest.raises(ValueError, match=r"expected attributions of shape \(N, C, H, W\)"):
        reduce_channels(torch.ones(2, 3, 3))
