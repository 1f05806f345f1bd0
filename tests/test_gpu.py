"""Issue 12 §4 on a GPU: every registered method, the evaluation functions and featvis run on
DEVICE and agree with the CPU. Marked ``gpu`` and skipped without DEVICE (``pytest -m gpu`` runs
only these).
"""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from xaisurvey import featvis, hooks, train
from xaisurvey.attribution import registry, saliency
from xaisurvey.evaluation import (
    centre_attribution,
    deletion_curve,
    gradsum,
    insertion_curve,
    make_substrate,
    map_similarity,
    pointing_game,
    random_attribution,
    sanity_check,
    spearman,
    ssim,
    top_k_intersection,
)

#: The accelerator under test: DEVICE by default; ``XAISURVEY_TEST_DEVICE=mps`` for Apple GPUs, and
#: ``XAISURVEY_TEST_DEVICE=cpu`` runs the same tests on the CPU, which checks the tests themselves on a
#: machine without a GPU (every comparison then holds trivially, but every call path runs).
DEVICE = torch.device(os.environ.get("XAISURVEY_TEST_DEVICE", "cuda"))


def _available(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available()
    if device.type == "mps":
        return torch.backends.mps.is_available()
    return device.type == "cpu"


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _available(DEVICE), reason=f"needs the device {DEVICE} (a CUDA GPU by default)"),
]


def small_net(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4),
    ).eval().to(dtype)


G = torch.Generator().manual_seed(2)
X = torch.rand(3, 3, 16, 16, generator=G)
MAPS = torch.rand(3, 16, 16, generator=G)
MASKS = torch.rand(3, 16, 16, generator=G) > 0.7
SEGMENTATION = torch.randint(0, 3, (16, 16), generator=G)


@pytest.fixture(autouse=True)
def _deterministic_kernels():  # type: ignore[no-untyped-def]
    previous = torch.backends.cudnn.deterministic, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("spec", registry.available(), ids=lambda s: s.name)
def test_every_registered_method_on_cuda_matches_the_cpu(spec: registry.MethodSpec, dtype: torch.dtype) -> None:
    layer = "3" if spec.needs_layer else None
    cpu = registry.explain(spec.name, small_net(dtype), X.to(dtype), [0, 1, 3], layer=layer, **spec.quick)
    model = small_net(dtype).to(DEVICE)
    gpu = registry.explain(spec.name, model, X.to(DEVICE, dtype), [0, 1, 3], layer=layer, **spec.quick)
    assert gpu.device.type == DEVICE.type and gpu.dtype == dtype
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("curve", [deletion_curve, insertion_curve])
@pytest.mark.parametrize("substrate", ["zeros", "mean", "blur"])
def test_curves_on_cuda_match_the_cpu(curve, substrate: str) -> None:  # type: ignore[no-untyped-def]
    cpu = curve(small_net(), X[0], 2, MAPS[0], substrate=substrate, steps=8)
    gpu = curve(small_net().to(DEVICE), X[0].to(DEVICE), 2, MAPS[0].to(DEVICE), substrate=substrate, steps=8)
    torch.testing.assert_close(gpu.scores, cpu.scores, rtol=1e-4, atol=1e-6)
    # a CPU image on a DEVICE model is moved to the model, as the attribution methods do
    moved = curve(small_net().to(DEVICE), X[0], 2, MAPS[0], substrate=substrate, steps=8)
    torch.testing.assert_close(moved.scores, cpu.scores, rtol=1e-4, atol=1e-6)


def test_substrates_and_baselines_are_made_on_cuda() -> None:
    for name in ("zeros", "mean", "blur"):
        out = make_substrate(X[0].to(DEVICE), name)
        assert out.device.type == DEVICE.type
        torch.testing.assert_close(out.cpu(), make_substrate(X[0], name), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(random_attribution(8, 8, seed=3, device=DEVICE).cpu(), random_attribution(8, 8, seed=3))
    torch.testing.assert_close(centre_attribution(8, 8, device=DEVICE).cpu(), centre_attribution(8, 8))


def test_map_statistics_accept_cuda_maps() -> None:
    a, b = MAPS[0], MAPS[1]
    assert spearman(a.to(DEVICE), b.to(DEVICE)) == spearman(a, b)
    assert ssim(a.to(DEVICE), b.to(DEVICE)) == ssim(a, b)
    assert top_k_intersection(a.to(DEVICE), b.to(DEVICE), 10) == top_k_intersection(a, b, 10)
    sims, ref = map_similarity(MAPS.to(DEVICE), MAPS.flip(-1).to(DEVICE)), map_similarity(MAPS, MAPS.flip(-1))
    assert all(torch.equal(sims[k], ref[k]) for k in ref)
    assert pointing_game(MAPS.to(DEVICE), MASKS.to(DEVICE)).hits == pointing_game(MAPS, MASKS).hits
    assert pointing_game(MAPS.to(DEVICE), MASKS).hits == pointing_game(MAPS, MASKS).hits  # mixed devices
    categories = {"a": [0], "b": [1, 2]}
    assert gradsum(a.to(DEVICE), SEGMENTATION.to(DEVICE), categories) == gradsum(a, SEGMENTATION, categories)


def test_sanity_check_on_cuda_matches_the_cpu() -> None:
    target = torch.tensor([0, 1, 2])
    cpu = sanity_check(small_net(), {"saliency": saliency}, X, target, layers=["0", "3", "7"])
    gpu = sanity_check(small_net().to(DEVICE), {"saliency": saliency}, X.to(DEVICE), target, layers=["0", "3", "7"])
    torch.testing.assert_close(gpu.maps["saliency"], cpu.maps["saliency"], rtol=1e-4, atol=1e-6)


def test_evaluate_and_feature_maps_on_cuda() -> None:
    y = torch.tensor([0, 1, 3])
    cpu_loss, cpu_acc = train.evaluate(small_net(), (X, y))
    gpu_loss, gpu_acc = train.evaluate(small_net().to(DEVICE), (X, y))  # CPU data, DEVICE model
    assert gpu_acc == cpu_acc and gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    cpu_maps = hooks.feature_maps(small_net(), X)
    gpu_maps = hooks.feature_maps(small_net().to(DEVICE), X.to(DEVICE))
    for name, value in cpu_maps.items():
        torch.testing.assert_close(gpu_maps[name].cpu(), value, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("recipe", ["naive", "jitter + blur", "Fourier + transforms"])
def test_featvis_on_cuda_matches_the_cpu(recipe: str) -> None:
    kwargs = dict(recipe=featvis.RECIPES[recipe], size=16, steps=3)
    cpu = featvis.maximise_channel(small_net(), "3", [0, 4], **kwargs)
    gpu = featvis.maximise_channel(small_net().to(DEVICE), "3", [0, 4], **kwargs)
    torch.testing.assert_close(gpu.images, cpu.images, rtol=1e-3, atol=1e-4)
    cpu_class = featvis.maximise_class(small_net(torch.float64), [1], **kwargs)
    gpu_class = featvis.maximise_class(small_net(torch.float64).to(DEVICE), [1], **kwargs)
    assert gpu_class.images.dtype == torch.float64
    torch.testing.assert_close(gpu_class.images, cpu_class.images, rtol=1e-6, atol=1e-7)


def test_the_command_line_on_cuda_matches_the_cpu(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    from xaisurvey import cli, data

    photo = str(data.fetch("images/grad-cam-pytorch/cat_dog.png"))
    for device in ("cpu", DEVICE.type, f"{DEVICE.type}:0"):
        assert cli.main(["explain", photo, "--device", device, "--target", "tabby", "-o", str(tmp_path / device), "-q"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == printed[1] == printed[2]  # same predicted class and probability (to 0.1 %)
    cpu = np.asarray(Image.open(tmp_path / "cpu" / "cat_dog_grad-cam_tabby.png"), dtype=int)
    for device in (DEVICE.type, f"{DEVICE.type}:0"):
        gpu = np.asarray(Image.open(tmp_path / device / "cat_dog_grad-cam_tabby.png"), dtype=int)
        assert np.abs(gpu - cpu).max() <= 2  # 8-bit overlays: rounding only
