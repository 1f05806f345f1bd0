"""Plot helpers: exact arrays for conversions and blends, structure of the figures."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from xaisurvey.plot import blend, image_grid, normalise_map, overlay, to_display


def test_to_display_moves_channels_last_exactly():
    x = torch.arange(24, dtype=torch.float32).reshape(3, 2, 4) / 23
    out = to_display(x)
    assert out.shape == (2, 4, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, x.permute(1, 2, 0).numpy())


def test_to_display_grey_and_numpy_inputs():
    grey = torch.rand(1, 5, 6)
    np.testing.assert_array_equal(to_display(grey), grey[0].numpy())
    array = np.random.default_rng(0).random((5, 6))
    np.testing.assert_allclose(to_display(array), array.astype(np.float32))


def test_to_display_refuses_values_outside_unit_range_unless_normalised():
    x = torch.tensor([[[-2.0, 2.0]]])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        to_display(x)
    np.testing.assert_array_equal(to_display(x, normalise=True), [[0.0, 1.0]])


@pytest.mark.parametrize("shape", [(2, 4, 4), (4, 4, 4), (1, 3, 4, 4), (5,)])
def test_to_display_refuses_wrong_shapes(shape):
    with pytest.raises(ValueError, match="image must be"):
        to_display(torch.zeros(shape))


def test_to_display_refuses_nan_and_non_tensors():
    with pytest.raises(ValueError, match="NaN"):
        to_display(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(TypeError, match="torch.Tensor or a NumPy array"):
        to_display([[0.0]])  # type: ignore[arg-type]


def test_normalise_map_exact_and_flat_gives_zeros():
    assert normalise_map(torch.tensor([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    flat = normalise_map(torch.full((3, 3), 7.0))
    assert torch.equal(flat, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        normalise_map(torch.tensor([0.0, float("inf")]))


def test_blend_is_the_convex_combination():
    image = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    heat = torch.tensor([[0.0, 1.0, 2.0, 3.0]] * 4)
    colours = matplotlib.colormaps["viridis"](normalise_map(heat).numpy())[..., :3]
    expected = 0.3 * image.permute(1, 2, 0).numpy() + 0.7 * colours
    np.testing.assert_allclose(blend(image, heat, alpha=0.7, cmap="viridis"), expected, atol=1e-6)
    np.testing.assert_allclose(blend(image, heat, alpha=0.0), image.permute(1, 2, 0).numpy(), atol=1e-7)


def test_blend_upsamples_a_small_map_and_handles_grey_images():
    out = blend(torch.zeros(1, 8, 8), torch.tensor([[0.0, 1.0], [0.0, 1.0]]), alpha=1.0, cmap="gray")
    assert out.shape == (8, 8, 3)
    # bilinear upsampling: the left edge is the minimum (black), the right edge the maximum (white)
    np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, -1], 1.0, atol=1e-6)
    assert np.all(np.diff(out[0, :, 0]) >= 0)


def test_blend_flat_map_gives_no_nan_and_checks_alpha():
    out = blend(torch.rand(3, 4, 4), torch.zeros(4, 4))
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="alpha"):
        blend(torch.rand(3, 4, 4), torch.zeros(4, 4), alpha=1.5)
    with pytest.raises(ValueError, match="heatmap must be"):
        blend(torch.rand(3, 4, 4), torch.zeros(2, 4, 4))


def test_overlay_draws_the_blend():
    fig, ax = plt.subplots()
    image, heat = torch.rand(3, 6, 6), torch.rand(3, 3)
    shown = overlay(ax, image, heat, alpha=0.4, title="t")
    np.testing.assert_allclose(shown.get_array(), blend(image, heat, alpha=0.4))
    assert ax.get_title() == "t" and not ax.axison
    plt.close(fig)


def test_image_grid_layout_titles_and_hidden_cells():
    images = [torch.rand(3, 5, 5) for _ in range(5)] + [torch.rand(5, 5)]
    fig = image_grid(images, [f"#{i}" for i in range(6)], ncols=4, suptitle="grid")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 8 and len(visible) == 6
    assert [ax.get_title() for ax in visible] == [f"#{i}" for i in range(6)]
    np.testing.assert_array_equal(visible[5].images[0].get_array(), images[5].numpy())
    plt.close(fig)


def test_image_grid_accepts_a_batch_and_normalises_feature_maps():
    maps = torch.randn(3, 1, 4, 4) * 10
    fig = image_grid(maps, normalise=True)
    for ax, m in zip(fig.axes, maps):
        np.testing.assert_allclose(ax.images[0].get_array(), normalise_map(m[0]).numpy(), atol=1e-6)
    plt.close(fig)


def test_image_grid_errors():
    with pytest.raises(ValueError, match="at least one image"):
        image_grid([])
    with pytest.raises(ValueError, match="2 titles for 1 images"):
        image_grid([torch.rand(3, 2, 2)], ["a", "b"])
