"""The contract every registered attribution method keeps, checked for every method in the registry.

A method joins these tests by being registered (``xaisurvey/attribution/registry.py``): nothing
here names a method. For each one, with its ``quick`` options:

* the registry entry is consistent with the function (signature, layer, docstring);
* a batch of one gives the same map as the same image inside a larger batch;
* every target form (int, list, tuple, 0-D and 1-D tensors, NumPy integers and arrays, and a
  callable where the method accepts one) gives the same map;
* float64 works and agrees with float32;
* a model that computes nothing (all weights zero) gives zeros, and a flat image gives finite
  values: never NaN;
* the user's model is left exactly as it was (per-module training flags, ``requires_grad``,
  parameters, buffers, ``.grad`` objects and hooks), also when the call fails half-way;
* 1,000 calls leave no hook behind and do not grow memory.
"""
from __future__ import annotations

import copy
import gc
import inspect
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import xaisurvey.attribution as xa
from xaisurvey.attribution import registry

from conftest import TinyGapNet

SPECS = registry.available()
IDS = [spec.name for spec in SPECS]
LAYER = "features.4"  # the tiny network's last ReLU: a spatial map every layer method can use


def _model(seed: int = 0) -> TinyGapNet:
    torch.manual_seed(seed)
    net = TinyGapNet()
    with torch.no_grad():
        net.features[1].running_mean.uniform_(-0.5, 0.5)
        net.features[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def _images(n: int = 3, size: int = 12, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=dtype)


def run(spec: registry.MethodSpec, model: nn.Module, x: torch.Tensor, target: object) -> torch.Tensor:
    options = dict(spec.quick)
    if spec.needs_layer:
        options["layer"] = LAYER
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. Guided Backprop's note on a model without ReLUs
        return spec.function(model, x, target, **options)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4) -> bool:
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-12)
    return a.shape == b.shape and float((a - b).abs().max()) <= rtol * scale


def _snapshot(model: nn.Module) -> dict[str, object]:
    hooks = {}
    for name, module in model.named_modules():
        hooks[name] = tuple(len(getattr(module, attr)) for attr in (
            "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"))
    return {
        "training": [(n, m.training) for n, m in model.named_modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "params": [(n, p.detach().clone()) for n, p in model.named_parameters()],
        "buffers": [(n, b.detach().clone()) for n, b in model.named_buffers()],
        "grads": [(n, p.grad, None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()],
        "hooks": hooks,
    }


def _assert_unchanged(model: nn.Module, before: dict[str, object]) -> None:
    after = _snapshot(model)
    assert after["training"] == before["training"], "training flags changed"
    assert after["requires_grad"] == before["requires_grad"], "requires_grad changed"
    assert after["hooks"] == before["hooks"], "hooks left behind or removed"
    for (name, p0), (_, p1) in zip(before["params"], after["params"]):
        assert torch.equal(p0, p1), f"parameter {name} changed"
    for (name, b0), (_, b1) in zip(before["buffers"], after["buffers"]):
        assert torch.equal(b0, b1), f"buffer {name} changed"
    for (name, g0, v0), (_, g1, v1) in zip(before["grads"], after["grads"]):
        assert g1 is g0, f".grad of {name} replaced"
        assert (v0 is None and v1 is None) or torch.equal(v0, v1), f".grad of {name} changed"


def _mixed_state_model() -> TinyGapNet:
    """Training mode with a frozen BatchNorm, a frozen first conv and a stale .grad on the classifier."""
    model = _model().train()
    model.features[1].eval()
    model.features[0].weight.requires_grad_(False)
    model.fc.weight.grad = torch.full_like(model.fc.weight, 0.5)
    return model


def test_registry_is_consistent() -> None:
    assert len(set(IDS)) == len(IDS) and len({s.cli_name for s in SPECS}) == len(SPECS)
    for spec in SPECS:
        assert spec.name in xa.__all__ and getattr(xa, spec.name) is spec.function, f"{spec.name} not exported"
        params = inspect.signature(spec.function).parameters
        assert list(params)[:3] == ["model", "x", "target"], f"{spec.name}: signature must start (model, x, target)"
        if spec.needs_layer:
            assert "layer" in params and params["layer"].default is inspect.Parameter.empty, spec.name
        doc = inspect.getdoc(spec.function) or ""
        for part in ("Paper:", "Args:", "Returns:", "Example:"):
            assert part in doc, f"{spec.name}: docstring lacks {part!r}"
        assert set(spec.quick) <= set(params) and set(spec.defaults) <= set(params), spec.name
        assert set(spec.evaluation) <= set(params), spec.name
        assert registry.get(spec.cli_name) is spec and registry.cost_passes(spec) >= 1
    with pytest.raises(KeyError, match="unknown method 'grad-camm'; did you mean grad-cam"):
        registry.get("grad-camm")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_shapes_and_explain(spec) -> None:
    model, x = _model(), _images()
    out = run(spec, model, x, [0, 1, 2])
    expected = (3, 3, 12, 12) if spec.output == "input" else (3, 12, 12)
    assert tuple(out.shape) == expected and out.dtype == torch.float32
    maps = registry.explain(spec.name, model, x, [0, 1, 2], layer=LAYER if spec.needs_layer else None, **spec.quick)
    assert tuple(maps.shape) == (3, 12, 12)
    if spec.needs_layer:
        with pytest.raises(ValueError, match="needs layer="):
            registry.explain(spec.name, model, x, 0)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_batch_of_one_equals_batch(spec) -> None:
    model, x = _model(), _images()
    together = run(spec, model, x, [0, 1, 2])
    for i in range(3):
        alone = run(spec, model, x[i : i + 1], [i])
        assert _close(alone[0], together[i]), f"{spec.name}: image {i} depends on the rest of the batch"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_target_form_gives_the_same_map(spec) -> None:
    model, x = _model(), _images()
    reference = run(spec, model, x, [2, 2, 2])
    forms = [2, [2, 2, 2], (2, 2, 2), torch.tensor(2), torch.tensor([2, 2, 2]), np.int64(2),
             np.array([2, 2, 2]), [np.int32(2)] * 3]
    if spec.accepts_callable_target:
        forms.append(lambda out: out[:, 2])
    for form in forms:
        assert _close(run(spec, model, x, form), reference), f"{spec.name}: target {form!r} differs"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_float64_agrees_with_float32(spec) -> None:
    model, x = _model(), _images()
    single = run(spec, model, x, [0, 1, 2])
    double = run(spec, copy.deepcopy(model).double(), x.double(), [0, 1, 2])
    assert double.dtype == torch.float64
    assert _close(double.float(), single, rtol=1e-3), spec.name


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_nothing_to_explain_gives_zeros_never_nan(spec) -> None:
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.features[1].running_mean.zero_()
        model.features[1].running_var.fill_(1.0)
    out = run(spec, model, _images(), 1)
    assert torch.isfinite(out).all() and float(out.abs().max()) == 0.0, f"{spec.name}: {out.abs().max()}"
    flat = run(spec, _model(), torch.full((2, 3, 12, 12), 0.5), 1)
    assert torch.isfinite(flat).all(), f"{spec.name}: NaN on a flat image"
    for normalise in (xa.minmax, xa.max_abs):
        assert torch.equal(normalise(out), torch.zeros_like(out))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_model_left_unchanged(spec) -> None:
    model = _mixed_state_model()
    before = _snapshot(model)
    run(spec, model, _images(), [0, 1, 2])
    _assert_unchanged(model, before)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_model_left_unchanged_after_an_error(spec) -> None:
    model = _mixed_state_model()
    calls = {"n": 0}

    def explode(_module: nn.Module, _inputs: tuple, _output: torch.Tensor) -> None:
        calls["n"] += 1
        raise RuntimeError("the user's hook failed")

    handle = model.fc.register_forward_hook(explode)
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="the user's hook failed"):
        run(spec, model, _images(), [0, 1, 2])
    assert calls["n"] >= 1
    _assert_unchanged(model, before)
    handle.remove()


def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() on deprecated module attributes warns
        return sum(isinstance(o, torch.Tensor) for o in gc.get_objects())


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_no_hook_or_memory_growth_over_1000_calls(spec) -> None:
    model, x = _model(), _images(n=2, size=8)
    before = _snapshot(model)
    for _ in range(100):
        run(spec, model, x, [0, 1])
    tensors, rss = _live_tensors(), _rss_bytes()
    for _ in range(900):
        run(spec, model, x, [0, 1])
    tensors_after, grown = _live_tensors(), _rss_bytes() - rss
    _assert_unchanged(model, before)
    assert tensors_after <= tensors, f"{spec.name}: {tensors_after - tensors} tensors more after 900 calls"
    assert grown < 8 * 2**20, f"{spec.name}: resident memory grew by {grown / 2**20:.1f} MiB over 900 calls"
