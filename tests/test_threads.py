"""Issue 12 §3: registered methods called from 8 threads at once, on one shared model and on
one model per thread. Every trial must leave each model's training flags and ``requires_grad``
as they were, and every result must equal the single-threaded result of the same call.
"""
from __future__ import annotations

import threading
from typing import Any

import pytest
import torch
from torch import nn

from xaisurvey.attribution import registry

THREADS = 8
CALLS_PER_THREAD = 3
TRIALS = 3
METHODS = [spec.name for spec in registry.available()]


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Dropout(0.3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4),
    ).train()
    net[1].eval()  # a frozen BatchNorm inside a training model
    net[0].weight.requires_grad_(False)  # mixed requires_grad
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.1, 0.1)
        net[1].running_var.uniform_(0.5, 1.5)
    return net


def flags(model: nn.Module) -> tuple[list[bool], list[bool]]:
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


X = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))


def job(thread: int, call: int) -> tuple[str, torch.Tensor, Any]:
    """The (method, input, target) a thread runs at its ``call``-th call: every method in turn."""
    name = METHODS[(thread * CALLS_PER_THREAD + call) % len(METHODS)]
    x = X.roll(thread, dims=-1)
    return name, x, [thread % 4, (thread + call) % 4]


def run(model: nn.Module, name: str, x: torch.Tensor, target: Any) -> torch.Tensor:
    spec = registry.get(name)
    return registry.explain(name, model, x, target, layer="3" if spec.needs_layer else None, **spec.quick)


def expected_results(model: nn.Module) -> dict[tuple[int, int], torch.Tensor]:
    return {(t, c): run(model, *job(t, c)) for t in range(THREADS) for c in range(CALLS_PER_THREAD)}


def run_threads(models: list[nn.Module]) -> tuple[dict[tuple[int, int], torch.Tensor], list[BaseException]]:
    results: dict[tuple[int, int], torch.Tensor] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        torch.set_num_threads(1)
        try:
            start.wait()
            for call in range(CALLS_PER_THREAD):
                results[(thread, call)] = run(models[thread], *job(thread, call))
        except BaseException as error:  # collected and reported by the test
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.parametrize("shared", [True, False], ids=["one-shared-model", "one-model-per-thread"])
def test_concurrent_calls_leave_the_model_alone_and_match_the_single_threaded_results(shared: bool) -> None:
    reference_model = make_model()
    expected = expected_results(reference_model)
    for trial in range(TRIALS):
        models = [make_model()] * THREADS if shared else [make_model() for _ in range(THREADS)]
        before = [flags(m) for m in models]
        results, errors = run_threads(models)
        assert not errors, f"trial {trial}: {errors[0]!r}"
        for m, b in zip(models, before):
            assert flags(m) == b, f"trial {trial}: a model's flags changed"
        assert results.keys() == expected.keys()
        for key, value in results.items():
            torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6, msg=f"trial {trial}, call {key}")


def test_every_method_is_exercised() -> None:
    names = {job(t, c)[0] for t in range(THREADS) for c in range(CALLS_PER_THREAD)}
    assert names == set(METHODS)
