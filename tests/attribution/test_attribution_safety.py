"""The user's model, input and autograd state are left exactly as they were, whatever happens."""
from __future__ import annotations

import gc
import warnings

import pytest
import torch
from torch import nn

from xaisurvey.attribution import cam, grad_cam, guided_backprop, guided_grad_cam, minmax, saliency, smoothgrad

from conftest import TinyGapNet

METHODS = {
    "saliency": lambda m, x, t: saliency(m, x, t),
    "smoothgrad": lambda m, x, t: smoothgrad(m, x, t, samples=3),
    "cam": lambda m, x, t: cam(m, x, t),
    "grad_cam": lambda m, x, t: grad_cam(m, x, t, layer="features.4"),
    "grad_cam_inner": lambda m, x, t: grad_cam(m, x, t, layer=m.features[0]),
    "guided_backprop": lambda m, x, t: guided_backprop(m, x, t),
    "guided_grad_cam": lambda m, x, t: guided_grad_cam(m, x, t, layer="features.4"),
    "guided_grad_cam_inner": lambda m, x, t: guided_grad_cam(m, x, t, layer="features.0"),
}


def hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )


def snapshot(model: nn.Module) -> dict:
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad_ids": [id(p.grad) for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "hooks": hook_count(model),
    }


def assert_same(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["grad_ids"] == before["grad_ids"]
    for a, b in zip(after["grads"], before["grads"]):
        assert (a is None and b is None) or torch.equal(a, b)
    assert after["state"].keys() == before["state"].keys()
    for key in before["state"]:
        assert torch.equal(after["state"][key], before["state"][key]), key
    assert after["hooks"] == before["hooks"] == 0
    assert torch._C._len_torch_function_stack() == 0


def messy(tiny: TinyGapNet) -> TinyGapNet:
    """A model mid-training: train mode with one submodule in eval, one frozen weight, existing grads."""
    tiny.train()
    tiny.features[1].eval()
    tiny.features[3].weight.requires_grad_(False)
    tiny.fc.weight.grad = torch.full_like(tiny.fc.weight, 7.0)
    tiny.features[0].bias.grad = torch.ones_like(tiny.features[0].bias)
    return tiny


@pytest.mark.parametrize("name", METHODS)
def test_model_state_is_restored_and_result_is_eval_mode(name, tiny, images) -> None:
    expected = METHODS[name](tiny, images, 2)  # reference: model already in eval mode
    model = messy(tiny)
    before = snapshot(model)
    out = METHODS[name](model, images, 2)
    assert_same(model, before)
    assert torch.equal(out, expected)  # eval mode during the call (BN used running statistics)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", METHODS)
def test_state_restored_when_an_error_is_raised_after_the_forward(name, tiny, images) -> None:
    model = messy(tiny)
    before = snapshot(model)
    with pytest.raises(ValueError, match="out of range"):
        METHODS[name](model, images, 4)  # 4 classes: index 4 is out of range, detected after the forward
    assert_same(model, before)


class Exploding(TinyGapNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.features(x)
        raise RuntimeError("boom inside forward")


@pytest.mark.parametrize("name", METHODS)
def test_hooks_removed_when_the_forward_raises(name, images) -> None:
    model = Exploding().train()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        METHODS[name](model, images, 0)
    assert_same(model, before)


@pytest.mark.parametrize("name", METHODS)
def test_input_tensor_and_its_grad_untouched(name, tiny, images) -> None:
    x = images.clone().requires_grad_(True)
    x.grad = torch.full_like(x, 3.0)
    grad_id = id(x.grad)
    METHODS[name](tiny, x, [0, 1, 2])
    assert torch.equal(x.detach(), images)
    assert x.requires_grad and id(x.grad) == grad_id and torch.equal(x.grad, torch.full_like(x, 3.0))
    plain = images.clone()
    METHODS[name](tiny, plain, 1)
    assert not plain.requires_grad and plain.grad is None and torch.equal(plain, images)


@pytest.mark.parametrize("name", METHODS)
def test_works_inside_no_grad_and_gives_the_same_result(name, tiny, images) -> None:
    outside = METHODS[name](tiny, images, 1)
    with torch.no_grad():
        inside = METHODS[name](tiny, images, 1)
    assert torch.equal(inside, outside)


@pytest.mark.parametrize("name", METHODS)
def test_zero_gradients_give_zero_maps_not_nan(name, tiny, images) -> None:
    with torch.no_grad():
        tiny.fc.weight.zero_()  # the score no longer depends on the image
    out = METHODS[name](tiny, images, 0)
    assert torch.count_nonzero(out) == 0
    normalised = minmax(out if out.dim() == 3 else out.sum(1))
    assert not torch.isnan(normalised).any() and torch.count_nonzero(normalised) == 0


@pytest.mark.parametrize("name", METHODS)
def test_follows_the_model_dtype(name, tiny, images) -> None:
    model64 = tiny.double()
    out = METHODS[name](model64, images, 1)  # float32 images are cast to the model's float64
    assert out.dtype == torch.float64
    ref = METHODS[name](model64, images.double(), 1)
    assert torch.equal(out, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("name", METHODS)
def test_follows_the_model_device(name, tiny, images) -> None:
    out = METHODS[name](tiny.cuda(), images, 1)
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), METHODS[name](tiny.cpu(), images, 1), atol=1e-5)


def test_no_growth_of_hooks_or_memory_over_1000_calls(images) -> None:
    model = TinyGapNet().eval()
    x = images[:1, :, :8, :8]
    calls = [
        lambda: grad_cam(model, x, 1, layer="features.4"),
        lambda: guided_grad_cam(model, x, 1, layer="features.0"),
        lambda: guided_backprop(model, x, 1),
        lambda: cam(model, x, 1),
        lambda: saliency(model, x, 1),
    ]
    for call in calls:  # warm-up: caches, lazily created objects
        for _ in range(20):
            call()
    gc.collect()
    objects_before = len(gc.get_objects())
    for i in range(1000):
        calls[i % len(calls)]()
    gc.collect()
    assert hook_count(model) == 0
    assert torch._C._len_torch_function_stack() == 0
    # 1000 calls leave (almost) nothing behind: a leak of one object per call would add 1000.
    assert len(gc.get_objects()) - objects_before < 100


def test_warnings_do_not_leak_between_calls(tiny, images) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ReLU-only model triggers no guided-backprop warning
        guided_backprop(tiny, images, 0)
        guided_grad_cam(tiny, images, 0, layer="features.4")
