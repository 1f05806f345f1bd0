"""The zoo: every registered attribution method on ten torchvision architectures, against references.

For each architecture (random weights, seeded, eval mode, a batch of 2 images of 64 x 64) and
each method of :func:`xaisurvey.attribution.registry.available` (its ``quick`` options; ``layer``
= the architecture's last convolutional block, :data:`LAYERS`), the result is one of

* ``agrees (max err E)``: the map agrees with a reference implementation that applies the same
  rule (captum, pytorch-grad-cam, torch-cam, or an independent re-implementation for
  VisualBackProp), E = the largest absolute difference after both are scaled the same way
  (per image, to a largest absolute value of 1), at most :data:`TOL`;
* ``warns: ...`` / ``raises: ...``: the method says what it cannot do, in one line;
* ``no reference: ...``: a method the zoo has no reference for (added to the registry later);
  it must return a finite map that is not all zeros, or raise or warn;
* ``FAILS: ...``: anything else (disagreement, an all-zero or NaN map, a multi-line error).

Run ``python tools/zoo_report.py`` for the table; ``tests/attribution/test_zoo.py`` asserts that no
cell fails. Where a reference does not apply the same rule (captum's Guided Backprop hooks only
``nn.ReLU`` modules: it misses functional ReLUs and ReLU6), the zoo also records that the two
differ, and compares against the reference on a *twin* of the model whose activations are all
``nn.ReLU`` modules (same function; for MobileNetV2 the twin replaces ReLU6 by ReLU, valid when
no activation reaches 6, which is checked).
"""
from __future__ import annotations

import copy
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from xaisurvey.attribution import registry  # noqa: E402
from xaisurvey.attribution.visual_backprop import visual_backprop_trace  # noqa: E402

#: Largest absolute difference allowed after scaling both maps to a largest absolute value of 1.
TOL = 1e-4
SIZE, BATCH = 64, 2
#: The predicted class of each image, set per architecture by evaluate(): Grad-CAM maps of the
#: predicted class are rarely all zero, so the comparison means something.
TARGETS: list[int] = []

ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "resnet50": lambda: torchvision.models.resnet50(),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(),
    "densenet121": lambda: torchvision.models.densenet121(),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(),
    "regnet_y_400mf": lambda: torchvision.models.regnet_y_400mf(),
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(),
    "vgg11_bn": lambda: torchvision.models.vgg11_bn(),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(),
    "googlenet": lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True),
}

#: The last convolutional block of each architecture (its output is not changed in place later).
LAYERS = {
    "resnet50": "layer4",
    "mobilenet_v2": "features.18",
    "mobilenet_v3_small": "features.12",
    "densenet121": "features.denseblock4",
    "efficientnet_b0": "features.8",
    "regnet_y_400mf": "trunk_output",
    "convnext_tiny": "features.7",
    "vgg11_bn": "features.27",
    "squeezenet1_1": "features.12",
    "googlenet": "inception5b",
}


@dataclass
class Cell:
    verdict: str  # "agrees", "warns", "raises", "no reference", "FAILS"
    detail: str

    def __str__(self) -> str:
        return f"{self.verdict}: {self.detail}" if self.verdict != "agrees" else f"agrees ({self.detail})"


def build(arch: str) -> nn.Module:
    torch.manual_seed(0)
    model = ARCHITECTURES[arch]().eval()
    # Non-trivial BatchNorm statistics, so that eval mode matters.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model


def inputs() -> torch.Tensor:
    return torch.rand(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))


def _scaled(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().double().reshape(t.shape[0], -1)
    top = flat.abs().amax(dim=1, keepdim=True)
    return torch.where(top > 0, flat / torch.where(top > 0, top, torch.ones_like(top)), flat)


def max_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    if ours.shape != ref.shape:
        raise AssertionError(f"shapes differ: ours {tuple(ours.shape)}, reference {tuple(ref.shape)}")
    return float((_scaled(ours) - _scaled(ref)).abs().max())


def _quiet(fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum: "Setting backward hooks on ReLU activations ..."
        return fn()


# --- twins: the same function with every ReLU an nn.ReLU module (what captum's rule can see) ---

def relu_module_twin(arch: str, model: nn.Module, x: torch.Tensor) -> nn.Module | None:
    """A copy of ``model`` whose functional ReLUs / ReLU6 are ``nn.ReLU`` modules; None if it has none."""
    if arch == "densenet121":
        twin = copy.deepcopy(model)
        twin.final_relu = nn.ReLU()

        def forward(self, x):  # noqa: ANN001
            out = self.final_relu(self.features(x))
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1))

        twin.forward = types.MethodType(forward, twin)
        return twin
    if arch == "googlenet":
        twin = copy.deepcopy(model)
        for m in twin.modules():
            if type(m).__name__ == "BasicConv2d":
                m.relu = nn.ReLU()
                m.forward = types.MethodType(lambda self, x: self.relu(self.bn(self.conv(x))), m)
        return twin
    if arch == "mobilenet_v2":
        twin = copy.deepcopy(model)
        for parent in twin.modules():
            for name, child in parent.named_children():
                if isinstance(child, nn.ReLU6):
                    setattr(parent, name, nn.ReLU())
        with torch.no_grad():  # valid only if no activation reaches 6 (then ReLU6 == ReLU)
            if not torch.equal(model(x), twin(x)):
                return None
        return twin
    return None


def _twin_layer(twin: nn.Module, name: str) -> nn.Module:
    return dict(twin.named_modules())[name]


# --- references -------------------------------------------------------------------------------

def ref_saliency(arch: str, model: nn.Module, x: torch.Tensor, layer: str, options: dict) -> torch.Tensor:
    from captum.attr import Saliency

    return _quiet(lambda: Saliency(model).attribute(x, target=TARGETS, abs=options.get("absolute", True)))


def ref_smoothgrad(arch: str, model: nn.Module, x: torch.Tensor, layer: str, options: dict) -> torch.Tensor:
    """captum ``Saliency`` (signed) averaged over the same noisy copies as ours (NoiseTunnel's
    rule; its own noise comes from the global RNG, so the copies are drawn here as ours are:
    copy s of every image adds sigma * e_s, e_s a float32 standard normal draw from a generator
    seeded with ``seed * 1_000_003 + s``, sigma = noise_level * the image's value range)."""
    from captum.attr import Saliency

    samples, level, seed = options.get("samples", 50), options.get("noise_level", 0.15), options.get("seed", 0)
    draws = [torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(seed * 1_000_003 + s))
             for s in range(samples)]
    total = torch.zeros_like(x)
    span = x.reshape(x.shape[0], -1).amax(1) - x.reshape(x.shape[0], -1).amin(1)
    for i in range(x.shape[0]):
        noisy = torch.stack([x[i] + level * span[i] * e for e in draws])
        grads = _quiet(lambda: Saliency(model).attribute(noisy, target=TARGETS[i], abs=False))
        total[i] = grads.mean(dim=0)
    return total


def _guided_model(arch: str, model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, str]:
    twin = relu_module_twin(arch, model, x)
    return (twin, "twin") if twin is not None else (model, "model")


def ref_guided_backprop(arch: str, model: nn.Module, x: torch.Tensor, layer: str, options: dict) -> torch.Tensor:
    from captum.attr import GuidedBackprop

    net, _ = _guided_model(arch, model, x)
    return _quiet(lambda: GuidedBackprop(net).attribute(x, target=TARGETS))


def ref_grad_cam(arch: str, model: nn.Module, x: torch.Tensor, layer: str, options: dict) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    module = _twin_layer(model, layer)
    maps = _quiet(lambda: LayerGradCam(model, module).attribute(x, target=TARGETS, relu_attributions=True))
    return LayerAttribution.interpolate(maps, (SIZE, SIZE), interpolate_mode="bilinear")[:, 0]


def ref_grad_cam_pgc(model: nn.Module, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, Callable]:
    """pytorch-grad-cam's GradCAM and its scaling (min-max at layer size, resize, min-max again)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=model, target_layers=[_twin_layer(model, layer)]) as explainer:
        theirs = torch.from_numpy(explainer(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in TARGETS]))
    model.zero_grad(set_to_none=True)

    def scaling(m: torch.Tensor) -> torch.Tensor:
        m = m - m.amin(dim=(1, 2), keepdim=True)
        return m / (1e-7 + m.amax(dim=(1, 2), keepdim=True))

    def pipeline(layer_maps: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(scaling(layer_maps)[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return scaling(up[:, 0])

    return theirs, pipeline


def ref_guided_grad_cam(arch: str, model: nn.Module, x: torch.Tensor, layer: str, options: dict) -> torch.Tensor:
    from captum.attr import GuidedGradCam

    net, _ = _guided_model(arch, model, x)
    module = _twin_layer(net, layer)
    return _quiet(lambda: GuidedGradCam(net, module).attribute(x, target=TARGETS, interpolate_mode="bilinear"))


def ref_cam(arch: str, model: nn.Module, x: torch.Tensor, layer: str, options: dict) -> torch.Tensor:
    """torch-cam's CAM at layer resolution, on the features that feed the model's global pooling."""
    from torchcam.methods import CAM

    pools = [n for n, m in model.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    features = {"resnet50": "layer4", "efficientnet_b0": "features", "regnet_y_400mf": "trunk_output",
                "googlenet": "inception5b"}.get(arch)
    if features is None or not pools or not linears:
        raise LookupError("no GAP + linear head for torch-cam's CAM")
    extractor = CAM(model, target_layer=features, fc_layer=linears[-1], input_shape=tuple(x.shape[1:]))
    try:
        with torch.no_grad():
            scores = model(x)
        maps = extractor(TARGETS, scores, normalized=False)[0]
    finally:
        extractor.remove_hooks()
    return F.interpolate(maps[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]


def ref_visual_backprop(arch: str, model: nn.Module, x: torch.Tensor, layer: str, options: dict) -> torch.Tensor:
    """VisualBackProp re-implemented with autograd: the channel averages recorded by forward hooks
    on the activations the trace names, and each scale-up as the adjoint (vector-Jacobian product)
    of the linear map it transposes -- an all-ones convolution of the layer's geometry, or the
    gather of the max-pool's recorded argmaxes averaged over channels."""
    trace = visual_backprop_trace(model, x)
    modules = dict(model.named_modules())
    averages: dict[str, torch.Tensor] = {}
    pools: dict[str, tuple] = {}
    calls: dict[str, int] = {}
    handles = []

    def hook_for(name: str):
        def hook(module, inputs, output):  # noqa: ANN001
            calls[name] = calls.get(name, 0) + 1
            key = name if calls[name] == 1 else f"{name}#{calls[name]}"
            if isinstance(module, nn.MaxPool2d):
                _, idx = F.max_pool2d(inputs[0], module.kernel_size, module.stride, module.padding,
                                      module.dilation, module.ceil_mode, return_indices=True)
                pools[key] = (idx, tuple(inputs[0].shape[-2:]))
            elif key in trace.layers:
                kept = output.clamp(min=0) if isinstance(module, nn.LeakyReLU) else output
                averages[key] = kept.mean(dim=1)
        return hook

    for name, m in modules.items():
        if not any(True for _ in m.children()):
            handles.append(m.register_forward_hook(hook_for(name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()

    def adjoint(mask: torch.Tensor, step: str) -> torch.Tensor:
        module = modules[step.split("#")[0]]
        if isinstance(module, nn.MaxPool2d):
            idx, size = pools[step]
            n, c = idx.shape[:2]
            u = torch.zeros(n, 1, size[0] * size[1], dtype=torch.float64, requires_grad=True)
            picked = torch.gather(u.expand(n, c, -1), 2, idx.reshape(n, c, -1))
            (grad,) = torch.autograd.grad((picked * mask.reshape(n, 1, -1)).sum() / c, u)
            return grad.view(n, 1, *size)
        k = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
        stride = module.stride if module.stride is not None else k
        dilation = getattr(module, "dilation", 1)
        size = _in_sizes[step]
        u = torch.zeros(mask.shape[0], 1, *size, dtype=torch.float64, requires_grad=True)
        out = F.conv2d(u, torch.ones(1, 1, *k, dtype=torch.float64), stride=stride, padding=module.padding,
                       dilation=dilation)
        (grad,) = torch.autograd.grad((out * mask).sum(), u)
        return grad

    # input sizes of the steps, from a size-recording pass
    _in_sizes: dict[str, tuple[int, int]] = {}
    calls.clear()
    handles = []

    def size_hook(name: str):
        def hook(module, inputs, output):  # noqa: ANN001
            calls[name] = calls.get(name, 0) + 1
            key = name if calls[name] == 1 else f"{name}#{calls[name]}"
            if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 4:
                _in_sizes[key] = tuple(inputs[0].shape[-2:])
        return hook

    for name, m in modules.items():
        if isinstance(m, (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d)):
            handles.append(m.register_forward_hook(size_hook(name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    mask = averages[trace.layers[-1]].double().unsqueeze(1)
    for level in range(len(trace.layers) - 1, -1, -1):
        for step in reversed(trace.steps[level]):
            mask = adjoint(mask, step)
        if level > 0:
            mask = mask * averages[trace.layers[level - 1]].double().unsqueeze(1)
            mask = mask / mask.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-300)  # scale: normalised below
    flat = mask.reshape(mask.shape[0], -1)
    low, high = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
    return ((flat - low) / (high - low).clamp(min=1e-300)).view(mask.shape[0], *mask.shape[2:])  # min-max, as ours


REFERENCES: dict[str, Callable[..., torch.Tensor]] = {
    "saliency": ref_saliency,
    "smoothgrad": ref_smoothgrad,
    "guided_backprop": ref_guided_backprop,
    "grad_cam": ref_grad_cam,
    "guided_grad_cam": ref_guided_grad_cam,
    "cam": ref_cam,
    "visual_backprop": ref_visual_backprop,
}

#: Methods whose reference hooks only nn.ReLU modules (captum's guided rule).
_CAPTUM_GUIDED = {"guided_backprop", "guided_grad_cam"}


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def run_method(spec: registry.MethodSpec, model: nn.Module, x: torch.Tensor, layer: str,
               options: dict) -> tuple[torch.Tensor | None, list[str], BaseException | None]:
    """Our result in the method's own form (input-shaped or map), the warnings, or the error."""
    kwargs = dict(options)
    if spec.needs_layer:
        kwargs["layer"] = layer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = spec.function(model, x, TARGETS, **kwargs)
        except (ValueError, TypeError, KeyError, RuntimeError) as e:
            return None, [], e
    messages = [f"{w.category.__name__}: {w.message}" for w in caught
                if w.category.__module__.startswith("xaisurvey") or "xaisurvey" in str(w.filename)]
    return result, messages, None


def evaluate(arch: str, method: str, model: nn.Module | None = None) -> Cell:
    """One cell of the table."""
    spec = registry.get(method)
    model = build(arch) if model is None else model
    x = inputs()
    with torch.no_grad():
        TARGETS[:] = model(x).argmax(dim=1).tolist()
    layer = LAYERS[arch]
    options = {**spec.defaults, **spec.quick}
    ours, warned, error = run_method(spec, model, x, layer, options)
    if error is not None:
        message = str(error)
        if "\n" in message or isinstance(error, RuntimeError):
            return Cell("FAILS", f"{_one_line(error)[:300]}")
        return Cell("raises", _one_line(error))
    assert ours is not None
    if not bool(torch.isfinite(ours).all()):
        return Cell("FAILS", "the map contains NaN or infinite values")
    if warned:
        return Cell("warns", " | ".join(warned))
    reference = REFERENCES.get(spec.name)
    if reference is None:
        if not bool((ours != 0).any()):
            return Cell("FAILS", "no reference, and the map is all zeros")
        return Cell("no reference", "finite, not all zeros")
    try:
        ref = reference(arch, model, x, layer, options)
    except LookupError as e:
        return Cell("FAILS", f"no reference applies ({e}), and the method neither raised nor warned")
    notes = []
    if bool((ref != 0).any()) and not bool((ours != 0).any()):
        return Cell("FAILS", "all-zero map where the reference is not")
    err = max_err(ours, ref)
    if spec.name in _CAPTUM_GUIDED and relu_module_twin(arch, model, x) is not None:
        direct = (ref_guided_backprop if spec.name == "guided_backprop" else ref_guided_grad_cam)
        plain = _quiet(lambda: _direct_captum(spec.name, model, x, layer))
        notes.append(f"captum on the model itself differs by {max_err(ours, plain):.2g}: it hooks nn.ReLU "
                     "modules only; compared on the nn.ReLU twin")
        del direct
    if spec.name == "grad_cam":
        theirs, pipeline = ref_grad_cam_pgc(model, x, layer)
        ours_layer = spec.function(model, x, TARGETS, layer=layer, **{**options, "upsample": None})
        err = max(err, float((pipeline(ours_layer).double() - theirs.double()).abs().max()))
        notes.append("captum LayerGradCam and pytorch-grad-cam GradCAM")
        signed = spec.function(model, x, TARGETS, layer=layer, **{**options, "relu": False, "upsample": None})
        from captum.attr import LayerGradCam

        raw = _quiet(lambda: LayerGradCam(model, _twin_layer(model, layer)).attribute(x, target=TARGETS))[:, 0]
        err = max(err, max_err(signed, raw))
    if err > TOL:
        return Cell("FAILS", f"differs from the reference by {err:.2g} (tolerance {TOL:g})")
    detail = f"max err {err:.1e}" + ("; all zeros in both" if not bool((ref != 0).any()) else "")
    return Cell("agrees", "; ".join([detail] + notes))


def _direct_captum(method: str, model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    from captum.attr import GuidedBackprop, GuidedGradCam

    if method == "guided_backprop":
        return GuidedBackprop(model).attribute(x, target=TARGETS)
    return GuidedGradCam(model, _twin_layer(model, layer)).attribute(x, target=TARGETS, interpolate_mode="bilinear")


def table(archs: list[str] | None = None, methods: list[str] | None = None) -> dict[tuple[str, str], Cell]:
    cells = {}
    for arch in archs or list(ARCHITECTURES):
        model = build(arch)
        for method in methods or [s.name for s in registry.available()]:
            cells[(arch, method)] = evaluate(arch, method, model)
    return cells


def to_markdown(cells: dict[tuple[str, str], Cell]) -> str:
    lines = ["| architecture | method | result |", "|---|---|---|"]
    for (arch, method), cell in cells.items():
        lines.append(f"| {arch} | {method} | {str(cell).replace('|', '/')} |")
    return "\n".join(lines)


def main() -> int:
    torch.set_num_threads(1)
    cells = table()
    print(to_markdown(cells))
    return 1 if any(c.verdict == "FAILS" for c in cells.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
