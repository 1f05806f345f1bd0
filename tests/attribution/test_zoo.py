"""The zoo: every registered method on ten torchvision architectures (``tools/zoo_report.py``).

Each architecture runs with random weights (seeded), in eval mode, on 2 images of 64 x 64, with
every method of ``registry.available()`` and its ``quick`` options. A cell passes when the map
agrees with a reference implementation that applies the same rule (captum, pytorch-grad-cam,
torch-cam; an autograd re-implementation for VisualBackProp) within ``TOL`` after both are
scaled to a largest absolute value of 1, or when the method raises or warns in one line naming
the problem. An all-zero or NaN map where the reference is not, a disagreement or a multi-line
error fails. The cells below are pinned: what each method must say on the architectures it cannot
handle as the paper defines it. The whole table is printed at the end (``pytest -s``); about 25 s
of CPU time on one core, hence ``slow``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from xaisurvey.attribution import registry

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "zoo_report.py"
pytest.importorskip("captum")
pytest.importorskip("pytorch_grad_cam")
pytest.importorskip("torchcam")


def _load():
    spec = importlib.util.spec_from_file_location("zoo_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


zoo = _load()

_VBP_RAISES = {
    "mobilenet_v3_small": "does not average (Hardswish 'features.0.2'",
    "efficientnet_b0": "no nn.ReLU, nn.ReLU6 or nn.LeakyReLU module producing a spatial map (N, C, h, w) (its maps pass "
                       "through SiLU",
    "convnext_tiny": "its maps pass through GELU",
    "squeezenet1_1": "layer 'features.3.expand3x3' reads the output of 'features.3.squeeze_activation', a parallel branch",
    "googlenet": "ReLUs called as F.relu/torch.relu inside forward are invisible to hooks",
}
_GUIDED_WARNS = {"mobilenet_v3_small": "hardswish", "efficientnet_b0": "silu", "convnext_tiny": "gelu"}
_CAM_RAISES = {
    "mobilenet_v2": "no nn.AdaptiveAvgPool2d", "densenet121": "no nn.AdaptiveAvgPool2d",
    "mobilenet_v3_small": "no GAP head", "convnext_tiny": "no GAP head", "vgg11_bn": "no GAP head",
    "squeezenet1_1": "no nn.Linear classifier",
}

#: (architecture, method) -> (verdict, a substring of the message); known methods elsewhere agree.
EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    **{(arch, "visual_backprop"): ("raises", text) for arch, text in _VBP_RAISES.items()},
    **{(arch, m): ("warns", f"uses {text}") for arch, text in _GUIDED_WARNS.items() for m in ("guided_backprop", "guided_grad_cam")},
    **{(arch, "cam"): ("raises", text) for arch, text in _CAM_RAISES.items()},
}
#: Where captum's guided rule cannot see every ReLU (functional ReLUs, ReLU6), the zoo shows the
#: difference from captum on the model itself and agrees on the nn.ReLU twin.
CAPTUM_DIFFERS = {"mobilenet_v2", "densenet121", "googlenet"}

TABLE: dict[tuple[str, str], object] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_table():
    yield
    if TABLE:
        print("\n" + zoo.to_markdown(TABLE))


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(zoo.ARCHITECTURES))
def test_every_method_agrees_raises_or_warns(arch: str) -> None:
    model = zoo.build(arch)
    problems = []
    for spec in registry.available():
        cell = zoo.evaluate(arch, spec.name, model)
        TABLE[(arch, spec.name)] = cell
        if cell.verdict == "FAILS":
            problems.append(f"{spec.name}: {cell.detail}")
            continue
        expected = EXPECTED.get((arch, spec.name))
        if expected is not None:
            verdict, text = expected
            if cell.verdict != verdict or text not in cell.detail:
                problems.append(f"{spec.name}: expected {verdict} with {text!r}, got {cell}")
        elif spec.name in zoo.REFERENCES and cell.verdict != "agrees":
            problems.append(f"{spec.name}: expected agreement with the reference, got {cell}")
        if spec.name in ("guided_backprop", "guided_grad_cam") and arch in CAPTUM_DIFFERS and "agrees" == cell.verdict:
            if "captum on the model itself differs" not in cell.detail:
                problems.append(f"{spec.name}: the difference from captum on the model itself was not shown")
    assert not problems, "\n".join(problems)


def test_a_silently_wrong_map_is_caught(monkeypatch) -> None:
    """The zoo's own check: a method that returns zeros where the reference does not fails."""
    spec = registry.get("saliency")
    zeros = type(spec)(**{**spec.__dict__, "function": lambda model, x, target, **kw: torch.zeros_like(x)})
    monkeypatch.setitem(registry.METHODS, "saliency", zeros)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(2, 10)).eval()
    cell = zoo.evaluate("resnet50", "saliency", model)
    assert cell.verdict == "FAILS" and "all-zero map" in cell.detail
