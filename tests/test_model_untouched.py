"""Issue 12 §3: no entry point of the package changes the user's model, also after an error.

The model has what breaks naive ``model.train(was_training)`` code: a frozen BatchNorm (eval)
inside a training model, a BatchNorm and a Dropout in training mode, a frozen parameter, an
existing ``.grad`` and non-trivial BatchNorm buffers. After every call (successful or not) each
module's training flag, each parameter's value, ``requires_grad`` and ``.grad`` (the same
object, same values) and each buffer must be exactly as before, and no hook may remain.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from torch import nn

from xaisurvey import featvis, hooks, train
from xaisurvey.attribution import registry, saliency
from xaisurvey.evaluation import (
    deletion_curve,
    insertion_curve,
    randomize_layers,
    sanity_check,
)


class MixedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.frozen_bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.live_bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.frozen_bn(self.conv(x)))
        h = self.relu(self.live_bn(self.conv2(h)))
        return self.fc(self.drop(self.pool(h).flatten(1)))


def mixed_net(seed: int = 0) -> MixedNet:
    torch.manual_seed(seed)
    net = MixedNet().train()
    net.frozen_bn.eval()  # a frozen BatchNorm inside a training model
    net.conv.weight.requires_grad_(False)  # a frozen parameter
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for bn in (net.frozen_bn, net.live_bn):
            bn.running_mean.copy_(torch.randn(4, generator=generator) * 0.1)
            bn.running_var.copy_(torch.rand(4, generator=generator) + 0.5)
            bn.num_batches_tracked.fill_(7)
    net.fc.weight.grad = torch.randn_like(net.fc.weight)  # a gradient left by the user's training
    return net


def snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "modes": [(name, m.training) for name, m in model.named_modules()],
        "params": [(name, p.detach().clone(), p.requires_grad) for name, p in model.named_parameters()],
        "grads": [(name, p.grad, None if p.grad is None else p.grad.clone()) for name, p in model.named_parameters()],
        "buffers": [(name, b.detach().clone()) for name, b in model.named_buffers()],
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                     for m in model.modules()),
    }


def assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    after = snapshot(model)
    assert after["modes"] == before["modes"]
    for (name, old, old_flag), (_, new, new_flag) in zip(before["params"], after["params"]):
        assert torch.equal(old, new), f"parameter {name} changed"
        assert old_flag == new_flag, f"requires_grad of {name} changed"
    for (name, old_obj, old_val), (_, new_obj, new_val) in zip(before["grads"], after["grads"]):
        assert new_obj is old_obj, f".grad of {name} was replaced"
        assert (old_val is None) == (new_val is None)
        if old_val is not None:
            assert torch.equal(old_val, new_val), f".grad of {name} changed in place"
    for (name, old), (_, new) in zip(before["buffers"], after["buffers"]):
        assert torch.equal(old, new), f"buffer {name} changed"
    assert after["hooks"] == before["hooks"]


X = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
IMAGE = X[0]
MAP = torch.rand(8, 8, generator=torch.Generator().manual_seed(4))


def _capture(model: nn.Module, fail: bool) -> None:
    with hooks.capture_feature_maps(model) as maps:
        model(X)  # a training-mode pass: the live BatchNorm updates its running statistics
        model(X).sum().backward()  # gradients accumulate into the user's .grad
        assert len(maps) > 0
        if fail:
            raise RuntimeError("boom")


def _sanity(model: nn.Module, fail: bool) -> None:
    def user_explainer(m: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        m.train()  # a careless explainer: puts every module in train mode and runs the model
        x = x.clone().requires_grad_(True)
        m(x).gather(1, t[:, None]).sum().backward()
        if fail:
            raise RuntimeError("boom")
        return x.grad

    sanity_check(model, {"grad": user_explainer, "saliency": saliency}, X, torch.tensor([0, 1]),
                 layers=["conv2", "fc"])


#: name -> call(model, fail): each entry point of §3, once succeeding and once raising inside.
CALLS: dict[str, Callable[[nn.Module, bool], Any]] = {
    "deletion_curve": lambda m, fail: deletion_curve(m, IMAGE, 7 if fail else 1, MAP, steps=4, batch_size=2),
    "insertion_curve": lambda m, fail: insertion_curve(m, IMAGE, 7 if fail else 1, MAP, steps=4, substrate="mean"),
    "sanity_check": _sanity,
    "randomize_layers": lambda m, fail: randomize_layers(m, ["nope" if fail else "conv2"]),
    "train.evaluate": lambda m, fail: train.evaluate(
        m, (X, torch.tensor([0, 5]) if fail else torch.tensor([0, 1])), batch_size=1),
    "capture_feature_maps": _capture,
    "feature_maps": lambda m, fail: hooks.feature_maps(m, X[:, :2] if fail else X),
    "feature_maps_eval": lambda m, fail: hooks.feature_maps(m, X[:, :2] if fail else X, eval_mode=True),
    "maximise_channel": lambda m, fail: featvis.maximise_channel(
        m, "conv2", [9] if fail else [0, 1], size=8, steps=2),
    "maximise_class": lambda m, fail: featvis.maximise_class(m, [9] if fail else [2], size=8, steps=2),
}


@pytest.mark.parametrize("fail", [False, True], ids=["ok", "error"])
@pytest.mark.parametrize("entry", list(CALLS))
def test_the_model_is_exactly_as_before(entry: str, fail: bool) -> None:
    model = mixed_net()
    before = snapshot(model)
    if fail:
        with pytest.raises((ValueError, RuntimeError, IndexError)):
            CALLS[entry](model, True)
    else:
        CALLS[entry](model, False)
    assert_unchanged(model, before)
    assert model.training and not model.frozen_bn.training and model.drop.training


@pytest.mark.parametrize("spec", registry.available(), ids=lambda s: s.name)
def test_every_registered_method_leaves_the_mixed_model_alone(spec: registry.MethodSpec) -> None:
    model = mixed_net()
    before = snapshot(model)
    layer = "conv2" if spec.needs_layer else None
    registry.explain(spec.name, model, X, [0, 2], layer=layer, **spec.quick)
    assert_unchanged(model, before)
    with pytest.raises(ValueError):  # the first convolution gets 2 channels instead of 3
        registry.explain(spec.name, model, X[:, :2], [0, 2], layer=layer, **spec.quick)
    assert_unchanged(model, before)


def test_a_training_mode_forward_in_capture_does_move_the_statistics_inside_the_block() -> None:
    # The control for the test above: without the restore, the block *would* change the buffers.
    model = mixed_net()
    before = model.live_bn.running_mean.clone()
    with hooks.capture_feature_maps(model):
        model(X)
        assert not torch.equal(model.live_bn.running_mean, before)
    assert torch.equal(model.live_bn.running_mean, before)


def test_capture_in_eval_mode_runs_the_block_in_eval_mode() -> None:
    model = mixed_net()
    with hooks.capture_feature_maps(model, eval_mode=True) as maps:
        inside = [m.training for m in model.modules()]
        model(X)
    assert not any(inside)
    expected = model.eval()(X)  # eval mode: BatchNorm with its running statistics, no dropout
    assert torch.allclose(maps["fc"], expected.detach())


def test_sanity_check_gives_the_same_scores_as_before_the_lazy_copies() -> None:
    # One randomised copy alive at a time must not change what is computed: the stages equal
    # the copies made all at once by cascading_randomization.
    from xaisurvey.evaluation import cascading_randomization

    model = mixed_net().eval()
    target = torch.tensor([0, 1])
    result = sanity_check(model, {"saliency": saliency}, X, target, layers=["conv", "conv2", "fc"])
    copies = cascading_randomization(model, ["conv", "conv2", "fc"])
    assert result.stages == ("trained", *(name for name, _ in copies))
    for s, (_, copy) in enumerate(copies, start=1):
        expected = saliency(copy, X, target).sum(1)
        assert torch.allclose(result.maps["saliency"][s], expected)


def test_randomize_layers_keeps_every_module_s_own_mode() -> None:
    model = mixed_net()
    copy = randomize_layers(model, ["fc"])
    assert [m.training for m in copy.modules()] == [m.training for m in model.modules()]


def test_sanity_check_releases_each_copy_before_making_the_next() -> None:
    import gc
    import weakref

    model = mixed_net().eval()
    alive: list[weakref.ref] = []

    def explainer(m: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        gc.collect()
        living = sum(1 for r in alive if r() is not None)
        if m is not model:
            alive.append(weakref.ref(m))
        explainer.most = max(explainer.most, living + (m is not model))  # type: ignore[attr-defined]
        return saliency(m, x, t)

    explainer.most = 0  # type: ignore[attr-defined]
    sanity_check(model, {"s": explainer}, X, torch.tensor([0, 1]), layers=["conv", "conv2", "fc"])
    assert len(alive) == 3
    assert explainer.most == 1  # type: ignore[attr-defined]


def test_evaluate_runs_a_float64_model() -> None:
    model = mixed_net().double()
    loss64, acc64 = train.evaluate(model, (X, torch.tensor([0, 1])))
    loss32, acc32 = train.evaluate(mixed_net(), (X, torch.tensor([0, 1])))
    assert acc64 == acc32 and loss64 == pytest.approx(loss32, rel=1e-5)


