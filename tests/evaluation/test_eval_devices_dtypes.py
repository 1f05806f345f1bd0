"""Issue 12 §4 on the CPU: every evaluation function and featvis in float32 and float64.

* each function gives the same result (to float32 precision) for float32 and float64 inputs;
* with float32 inputs no image-sized float64 tensor is made anywhere (a dispatch mode records
  every tensor the call creates): masks, blur kernels, substrates and baselines follow the
  input's dtype, so the code also runs on MPS, which has no float64. Only the documented
  summaries (a curve of ``steps + 1`` scores, the statistics of similarity, pointing and
  GradSUM, computed on the CPU) may be float64;
* baselines are made on the device and in the dtype asked for.

The same functions are compared between CUDA and the CPU in ``tests/test_gpu.py``.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from xaisurvey import featvis
from xaisurvey.attribution import saliency
from xaisurvey.evaluation import (
    category_masks,
    centre_attribution,
    deletion_curve,
    gradsum,
    insertion_curve,
    make_substrate,
    map_similarity,
    normalize_map,
    pixel_order,
    pointing_game,
    random_attribution,
    rank,
    sanity_check,
    spearman,
    ssim,
    top_k_intersection,
)


class Float64Sizes(TorchDispatchMode):
    """Records the number of elements of every float64 tensor an operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64:
                self.sizes.append(t.numel())
        return out


def largest_float64(call: Callable[[], Any]) -> int:
    with Float64Sizes() as mode:
        call()
    return max(mode.sizes, default=0)


def net(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).eval()
    return model.to(dtype)


G = torch.Generator().manual_seed(5)
IMAGE = torch.rand(3, 12, 12, generator=G)
MAP = torch.rand(12, 12, generator=G)
MAPS = torch.rand(3, 12, 12, generator=G)
MASKS = torch.rand(3, 12, 12, generator=G) > 0.7
SEGMENTATION = torch.randint(0, 4, (12, 12), generator=G)
CATEGORIES = {"a": [0], "b": [1, 2], "c": [3]}
SUBSTRATES = ["zeros", "mean", "blur", "tensor"]


def _substrate(name: str, dtype: torch.dtype) -> Any:
    return (IMAGE.flip(-1) * 0.5).to(dtype) if name == "tensor" else name


@pytest.mark.parametrize("curve", [deletion_curve, insertion_curve])
@pytest.mark.parametrize("substrate", SUBSTRATES)
def test_curves_agree_in_float32_and_float64(curve: Callable[..., Any], substrate: str) -> None:
    results = {
        dtype: curve(net(dtype), IMAGE.to(dtype), 1, MAP.to(dtype), substrate=_substrate(substrate, dtype),
                     steps=6, batch_size=4)
        for dtype in (torch.float32, torch.float64)
    }
    a, b = results[torch.float32], results[torch.float64]
    assert torch.equal(a.fractions, b.fractions)
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    assert a.scores.dtype == torch.float64 and a.scores.device.type == "cpu"


@pytest.mark.parametrize("curve", [deletion_curve, insertion_curve])
@pytest.mark.parametrize("substrate", SUBSTRATES)
def test_curves_make_no_float64_work_tensor_for_float32_input(curve: Callable[..., Any], substrate: str) -> None:
    steps = 6
    biggest = largest_float64(lambda: curve(net(torch.float32), IMAGE, 1, MAP, substrate=_substrate(substrate, torch.float32),
                                            steps=steps))
    assert biggest <= steps + 1  # the returned curve only, never a mask, kernel or image


def test_the_image_follows_the_model_dtype() -> None:
    # A float64 image on a float32 model runs (moved to the model's dtype), like the attribution methods.
    a = deletion_curve(net(torch.float32), IMAGE.double(), 1, MAP.double(), steps=4)
    b = deletion_curve(net(torch.float32), IMAGE, 1, MAP, steps=4)
    torch.testing.assert_close(a.scores, b.scores)


@pytest.mark.parametrize("substrate", ["zeros", "mean", "blur"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_substrates_keep_the_image_dtype(substrate: str, dtype: torch.dtype) -> None:
    out = make_substrate(IMAGE.to(dtype), substrate)
    assert out.dtype == dtype and out.shape == IMAGE.shape
    torch.testing.assert_close(out.float(), make_substrate(IMAGE, substrate), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_baselines_are_made_in_the_dtype_and_on_the_device_asked_for(dtype: torch.dtype) -> None:
    for baseline in (random_attribution(5, 7, seed=2, dtype=dtype, device="cpu"), centre_attribution(5, 7, dtype=dtype)):
        assert baseline.dtype == dtype and baseline.device.type == "cpu" and baseline.shape == (5, 7)
    torch.testing.assert_close(random_attribution(5, 7, seed=2, dtype=dtype).float(), random_attribution(5, 7, seed=2))
    assert torch.equal(pixel_order(centre_attribution(5, 7, dtype=dtype)), pixel_order(centre_attribution(5, 7)))
    assert largest_float64(lambda: centre_attribution(224, 224)) == 0


def test_pixel_order_is_the_same_in_both_dtypes() -> None:
    ties = torch.tensor([[0.5, 0.25], [0.5, 1.0]])
    for dtype in (torch.float32, torch.float64, torch.int64):
        assert pixel_order(ties.mul(4).to(dtype)).tolist() == [3, 0, 2, 1]
    assert torch.equal(pixel_order(MAP), pixel_order(MAP.double()))


def test_similarity_pointing_and_gradsum_agree_in_both_dtypes() -> None:
    other = MAP.roll(1, 0) + 0.1 * MAP
    for dtype in (torch.float32, torch.float64):
        a, b = MAP.to(dtype), other.to(dtype)
        assert spearman(a, b) == pytest.approx(spearman(MAP, other), abs=1e-7)
        assert spearman(a, b, absolute=True) == pytest.approx(spearman(MAP, other, absolute=True), abs=1e-7)
        assert ssim(a, b) == pytest.approx(ssim(MAP, other), abs=1e-6)
        assert top_k_intersection(a, b, 20) == top_k_intersection(MAP, other, 20)
        assert torch.equal(rank(a), rank(MAP))
        torch.testing.assert_close(normalize_map(a), normalize_map(MAP), rtol=1e-6, atol=1e-7)
        sims = map_similarity(MAPS.to(dtype), MAPS.to(dtype).flip(-1))
        reference = map_similarity(MAPS, MAPS.flip(-1))
        for key in reference:
            torch.testing.assert_close(sims[key], reference[key], rtol=1e-5, atol=1e-6)
        assert pointing_game(MAPS.to(dtype), MASKS).hits == pointing_game(MAPS, MASKS).hits
        g, ref = gradsum(MAP.to(dtype), SEGMENTATION, CATEGORIES), gradsum(MAP, SEGMENTATION, CATEGORIES)
        assert g.pixels == ref.pixels
        assert g.percent == pytest.approx(ref.percent, abs=1e-4) and g.share == pytest.approx(ref.share, abs=1e-4)
    assert category_masks(SEGMENTATION, CATEGORIES).shape == (3, 12, 12)


def test_sanity_check_agrees_in_both_dtypes() -> None:
    x = torch.stack([IMAGE, IMAGE.flip(-1)])
    target = torch.tensor([0, 2])
    results = {
        dtype: sanity_check(net(dtype), {"saliency": saliency}, x.to(dtype), target, layers=["0", "3", "7"], ssim_window=5)
        for dtype in (torch.float32, torch.float64)
    }
    a, b = results[torch.float32], results[torch.float64]
    assert a.stages == b.stages and a.maps["saliency"].dtype == torch.float32 and b.maps["saliency"].dtype == torch.float64
    # The trained stage agrees; the randomised stages do not have to (PyTorch's initialisers
    # draw other numbers for a float64 weight than for a float32 one under the same seed).
    torch.testing.assert_close(a.maps["saliency"][0].double(), b.maps["saliency"][0], rtol=1e-4, atol=1e-7)
    for result in (a, b):
        for metric in ("spearman", "spearman_abs", "ssim"):
            scores = result.scores["saliency"][metric]
            assert torch.isfinite(scores).all() and torch.allclose(scores[0], torch.ones(2, dtype=scores.dtype))


@pytest.mark.parametrize("recipe", ["naive", "jitter + blur", "Fourier + transforms"])
def test_featvis_runs_in_the_model_dtype(recipe: str) -> None:
    runs = {
        dtype: featvis.maximise_channel(net(dtype), "3", [0, 2], recipe=featvis.RECIPES[recipe], size=16, steps=4)
        for dtype in (torch.float32, torch.float64)
    }
    a, b = runs[torch.float32], runs[torch.float64]
    assert a.images.dtype == torch.float32 and b.images.dtype == torch.float64
    assert b.trace.dtype == torch.float64 and b.objective.dtype == torch.float64
    torch.testing.assert_close(a.images.double(), b.images, rtol=1e-3, atol=1e-4)
    biggest = largest_float64(lambda: featvis.maximise_class(net(torch.float32), [1], recipe=featvis.RECIPES[recipe],
                                                             size=16, steps=2))
    assert biggest == 0
