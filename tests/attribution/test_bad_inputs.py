"""Bad inputs across the public API: each gets ONE line, naming the bad argument, of a plain type.

Every case is (name, callable, expected exception type, a substring of the message that names
the argument). A case passes when the call raises exactly that type (never an IndexError or a
RuntimeError from deep inside PyTorch), the message is one line and contains the substring.
The attribution cases run for every registered method (``registry.available()``), so a method
added to the registry is held to them without another line.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
import torch
from torch import nn

from xaisurvey.attribution import registry

N = 2


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def _net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


def _x(*shape: int) -> torch.Tensor:
    return torch.rand(*(shape or (N, 3, 8, 8)), generator=torch.Generator().manual_seed(0))


def _with(value: float) -> torch.Tensor:
    x = _x()
    x[0, 0, 0, 0] = value
    return x


def _call(name: str, x: Any = None, target: Any = 0, layer: Any = "default", **options: Any) -> Callable[[], object]:
    """registry.explain(name, net, x, target, layer=the method's layer, **quick options)."""

    def run() -> object:
        spec = registry.get(name)
        net = _net()
        lay = ("features.2" if spec.needs_layer else None) if isinstance(layer, str) and layer == "default" else layer
        return registry.explain(name, net, _x() if x is None else x, target, layer=lay, **{**spec.quick, **options})

    return run


# (id, x, target, layer, options, exception, substring) for every registered method
METHOD_CASES: list[tuple[str, Any, Any, Any, dict, type, str]] = [
    ("x-list", [[0.0]], 0, "default", {}, TypeError, "x must be a torch.Tensor"),
    ("x-numpy", np.zeros((N, 3, 8, 8), dtype=np.float32), 0, "default", {}, TypeError, "x must be a torch.Tensor"),
    ("x-int64", torch.zeros(N, 3, 8, 8, dtype=torch.long), 0, "default", {}, TypeError, "x must be a floating-point"),
    ("x-uint8", torch.zeros(N, 3, 8, 8, dtype=torch.uint8), 0, "default", {}, TypeError, "x must be a floating-point"),
    ("x-bool", torch.zeros(N, 3, 8, 8, dtype=torch.bool), 0, "default", {}, TypeError, "x must be a floating-point"),
    ("x-complex", torch.zeros(N, 3, 8, 8, dtype=torch.complex64), 0, "default", {}, TypeError, "x must be a floating-point"),
    ("x-rank3", _x(3, 8, 8), 0, "default", {}, ValueError, "x must have 4 dimensions"),
    ("x-rank2", _x(8, 8), 0, "default", {}, ValueError, "x must have 4 dimensions"),
    ("x-rank5", _x(1, N, 3, 8, 8), 0, "default", {}, ValueError, "x must have 4 dimensions"),
    ("x-nan", _with(float("nan")), 0, "default", {}, ValueError, "x contains NaN"),
    ("x-inf", _with(float("inf")), 0, "default", {}, ValueError, "x contains NaN or infinite"),
    ("x-empty-batch", _x(0, 3, 8, 8), 0, "default", {}, ValueError, "x is an empty batch"),
    ("x-empty-image", _x(N, 3, 0, 8), 0, "default", {}, ValueError, "x has an empty dimension"),
    ("x-channels", _x(N, 1, 8, 8), 0, "default", {}, ValueError, "x has 1 channels"),
    ("target-float", None, 1.5, "default", {}, TypeError, "target"),
    ("target-bool", None, True, "default", {}, TypeError, "target"),
    ("target-out-of-range", None, 4, "default", {}, ValueError, "target 4 is out of range"),
    ("target-negative", None, -1, "default", {}, ValueError, "target -1 is out of range"),
    ("target-count", None, [0, 1, 2], "default", {}, ValueError, "3 targets for 2 images"),
    ("target-2d-tensor", None, torch.zeros(N, 1, dtype=torch.long), "default", {}, ValueError, "target tensor must be 0-D or 1-D"),
    ("target-float-tensor", None, torch.zeros(N), "default", {}, TypeError, "target tensor must hold integer"),
    ("target-bool-tensor", None, torch.zeros(N, dtype=torch.bool), "default", {}, TypeError, "target tensor must hold integer"),
    ("target-numpy-float", None, np.zeros(N), "default", {}, TypeError, "target array must hold integer"),
    ("target-numpy-2d", None, np.zeros((N, 1), dtype=np.int64), "default", {}, ValueError, "target array must be 0-D or 1-D"),
    ("target-string", None, "cat", "default", {}, TypeError, "target must be an int"),
    ("target-dict", None, {"class": 1}, "default", {}, TypeError, "target must be an int"),
    ("target-list-of-floats", None, [0, 1.0], "default", {}, TypeError, "target list must hold ints"),
    ("target-callable-shape", None, lambda out: out, "default", {}, ValueError, "target callable must return one score per image"),
    ("target-callable-type", None, lambda out: 1.0, "default", {}, TypeError, "target callable must return a tensor"),
    ("layer-unknown-name", None, 0, "nope", {}, ValueError, "no layer named 'nope'"),
    ("layer-wrong-type", None, 0, 3, {}, TypeError, "layer must be an nn.Module"),
    ("layer-foreign-module", None, 0, nn.Conv2d(3, 3, 1), {}, ValueError, "is not a module of this model"),
    ("layer-not-spatial", None, 0, "fc", {}, ValueError, "not a spatial map"),
    ("option-unknown", None, 0, "default", {"bogus": 1}, TypeError, "bogus"),
]


def _method_cases() -> list:
    cases = []
    for spec in registry.available():
        for case_id, x, target, layer, options, exc, text in METHOD_CASES:
            if case_id.startswith("layer-") and not spec.needs_layer:
                continue  # methods without a layer: see "layer-given-to-a-method-without-one" below
            if case_id.startswith("target-callable") and not spec.accepts_callable_target:
                continue  # CAM refuses callables altogether ("cam-callable-target" below)
            if case_id.startswith("target-") and not spec.class_sensitive and case_id in ("target-out-of-range",):
                continue  # a target that is ignored is checked for its form, not against the output
            if case_id in ("target-callable-shape", "target-callable-type") and not spec.class_sensitive:
                continue  # the model output is never scored
            cases.append(pytest.param(_call(spec.name, x, target, layer, **options), exc, text,
                                      id=f"{spec.name}-{case_id}"))
    return cases


def _cases_without_methods() -> list:
    from xaisurvey import evaluation as ev
    from xaisurvey import featvis, models, plot
    from xaisurvey.attribution import cam, grad_cam, guided_backprop, guided_grad_cam, saliency, smoothgrad, visual_backprop
    from xaisurvey.data import cifar10_subset, imagenette, mnist, photo
    from xaisurvey.data.sets import read_image
    from xaisurvey.hooks import capture_feature_maps

    net, x = _net(), _x()
    img, amap = _x(3, 8, 8), torch.rand(8, 8)

    def grid(**kw):
        return lambda: plot.image_grid([img, img], **kw)

    def capture(layers):
        def run():
            with capture_feature_maps(net, layers):
                net(x)
        return run

    rows = [
        # registry
        ("registry-unknown-method", lambda: registry.explain("nope", net, x, 0), KeyError, "unknown method 'nope'"),
        ("registry-method-not-str", lambda: registry.get(3), TypeError, "method name must be a str"),
        ("registry-unknown-family", lambda: registry.available(family="magic"), ValueError, "unknown family 'magic'"),
        ("registry-layer-missing", lambda: registry.explain("grad_cam", net, x, 0), ValueError, "needs layer="),
        ("registry-layer-given-to-a-method-without-one", lambda: registry.explain("saliency", net, x, 0, layer="fc"),
         ValueError, "takes no layer"),
        ("model-not-a-module", lambda: saliency(lambda t: t, x, 0), TypeError, "model must be a torch.nn.Module"),
        # options of the methods
        ("smoothgrad-samples-negative", lambda: smoothgrad(net, x, 0, samples=-1), ValueError, "samples must be an int >= 1"),
        ("smoothgrad-samples-zero", lambda: smoothgrad(net, x, 0, samples=0), ValueError, "samples must be an int >= 1"),
        ("smoothgrad-samples-float", lambda: smoothgrad(net, x, 0, samples=2.5), ValueError, "samples must be an int"),
        ("smoothgrad-noise-negative", lambda: smoothgrad(net, x, 0, noise_level=-0.1), ValueError, "noise_level"),
        ("smoothgrad-noise-string", lambda: smoothgrad(net, x, 0, noise_level="high"), ValueError, "noise_level"),
        ("smoothgrad-batch-size-zero", lambda: smoothgrad(net, x, 0, batch_size=0), ValueError, "batch_size"),
        ("smoothgrad-seed-string", lambda: smoothgrad(net, x, 0, samples=2, seed="x"), ValueError, "seed must be an int"),
        ("saliency-reduce-unknown", lambda: saliency(net, x, 0, reduce="median"), ValueError, "median"),
        ("saliency-absolute-string", lambda: saliency(net, x, 0, absolute="yes"), TypeError, "absolute"),
        ("guided-backprop-rule-unknown", lambda: guided_backprop(net, x, 0, rule="lrp"), ValueError, "rule must be one of"),
        ("grad-cam-weights-unknown", lambda: grad_cam(net, x, 0, layer="features.2", weights="max"), ValueError, "weights"),
        ("grad-cam-upsample-unknown", lambda: grad_cam(net, x, 0, layer="features.2", upsample="cubic"), ValueError, "upsample"),
        ("grad-cam-relu-string", lambda: grad_cam(net, x, 0, layer="features.2", relu="no"), TypeError, "relu"),
        ("guided-grad-cam-upsample-none", lambda: guided_grad_cam(net, x, 0, layer="features.2", upsample=None),
         ValueError, "upsample"),
        ("cam-fc-unknown", lambda: cam(net, x, 0, fc="head"), ValueError, "no layer named 'head'"),
        ("cam-fc-not-linear", lambda: cam(net, x, 0, fc="features.0"), ValueError, "fc must be an nn.Linear"),
        ("cam-callable-target", lambda: cam(net, x, lambda out: out[:, 0]), TypeError, "not a callable"),
        ("visual-backprop-upsample-unknown", lambda: visual_backprop(net, x, upsample="nearest"), ValueError, "upsample must be"),
        ("visual-backprop-maxpool-unknown", lambda: visual_backprop(net, x, maxpool="max"), ValueError, "maxpool must be"),
        ("visual-backprop-normalize-string", lambda: visual_backprop(net, x, normalize="yes"), TypeError, "normalize"),
        # evaluation
        ("deletion-image-4d", lambda: ev.deletion_curve(net, x, 0, amap), ValueError, "image"),
        ("deletion-steps-zero", lambda: ev.deletion_curve(net, img, 0, amap, steps=0), ValueError, "steps"),
        ("deletion-attribution-shape", lambda: ev.deletion_curve(net, img, 0, torch.rand(5, 5)), ValueError, "attribution"),
        ("deletion-substrate-unknown", lambda: ev.deletion_curve(net, img, 0, amap, substrate="noise"), ValueError, "substrate"),
        ("deletion-score-unknown", lambda: ev.deletion_curve(net, img, 0, amap, score="rank"), ValueError, "score"),
        ("deletion-target-out-of-range", lambda: ev.deletion_curve(net, img, 9, amap), ValueError, "target"),
        ("insertion-batch-size-zero", lambda: ev.insertion_curve(net, img, 0, amap, batch_size=0), ValueError, "batch_size"),
        ("auc-lengths", lambda: ev.area_under_curve(torch.rand(3), torch.rand(4)), ValueError, "fractions"),
        ("pointing-hit-mask-shape", lambda: ev.pointing_hit(amap, torch.ones(4, 4, dtype=torch.bool)), ValueError, "mask shape"),
        ("pointing-game-counts", lambda: ev.pointing_game([amap, amap], [amap > 0.5]), ValueError, "masks"),
        ("spearman-shapes", lambda: ev.spearman(amap, torch.rand(4, 4)), ValueError, "same shape"),
        ("top-k-zero", lambda: ev.top_k_intersection(amap, amap, 0), ValueError, "k must be"),
        ("ssim-window-even", lambda: ev.ssim(amap, amap, window=4), ValueError, "window must be"),
        ("sanity-unknown-layer", lambda: ev.sanity_check(net, {"s": saliency}, x, torch.zeros(N, dtype=torch.long),
                                                         layers=["nope"]), ValueError, "nope"),
        ("sanity-mode-unknown", lambda: ev.sanity_check(net, {"s": saliency}, x, torch.zeros(N, dtype=torch.long),
                                                        layers=["fc"], mode="random"), ValueError, "mode"),
        ("random-attribution-height", lambda: ev.random_attribution(0, 4), ValueError, "height must be"),
        ("random-attribution-width", lambda: ev.random_attribution(4, 2.5), ValueError, "width must be"),
        # models, data, plots, feature visualisation, hooks
        ("models-unknown-name", lambda: models.load("resnet9000"), KeyError, "unknown model 'resnet9000'"),
        ("models-name-not-str", lambda: models.load(3), TypeError, "model name must be a str"),
        ("mnist-split-unknown", lambda: mnist("validation"), ValueError, "split"),
        ("mnist-test-size-negative", lambda: mnist("train", test_size=-1), ValueError, "test_size"),
        ("photo-unknown", lambda: photo("unicorn"), KeyError, "unicorn"),
        ("imagenette-per-class-negative", lambda: imagenette(per_class=-1), ValueError, "per_class"),
        ("imagenette-limit-float", lambda: imagenette(limit=2.5), ValueError, "limit"),
        ("cifar-per-class-negative", lambda: cifar10_subset(per_class=-1), ValueError, "per_class"),
        ("read-image-path-type", lambda: read_image(123), TypeError, "path must be a str"),
        ("plot-blend-alpha", lambda: plot.blend(img, amap, alpha=2.0), ValueError, "alpha must lie in [0, 1]"),
        ("plot-blend-cmap", lambda: plot.blend(img, amap, cmap="nocmap"), ValueError, "cmap"),
        ("plot-display-rank", lambda: plot.to_display(torch.rand(1, 1, 3, 8, 8)), ValueError, "image must be"),
        ("plot-normalise-type", lambda: plot.normalise_map("map"), TypeError, "heatmap must be a torch.Tensor"),
        ("plot-grid-titles", grid(titles=["one"]), ValueError, "1 titles for 2 images"),
        ("plot-grid-ncols", grid(ncols=0), ValueError, "ncols must be >= 1"),
        ("featvis-layer-unknown", lambda: featvis.maximise_channel(net, "nope", 0, size=8, steps=1), ValueError, "nope"),
        ("featvis-channel-out-of-range", lambda: featvis.maximise_channel(net, "features.2", 99, size=8, steps=1),
         ValueError, "channel"),
        ("featvis-steps-zero", lambda: featvis.maximise_channel(net, "features.2", 0, size=8, steps=0), ValueError, "steps"),
        ("featvis-size-zero", lambda: featvis.maximise_class(net, 0, size=0, steps=1), ValueError, "size"),
        ("featvis-class-out-of-range", lambda: featvis.maximise_class(net, 9, size=8, steps=1), ValueError, "class 9"),
        ("featvis-lr-negative", lambda: featvis.maximise_class(net, 0, size=8, steps=1, lr=-1.0), ValueError, "lr"),
        ("featvis-class-negative", lambda: featvis.maximise_class(net, -1, size=8, steps=1), ValueError, "indices"),
        ("hooks-unknown-layer", capture(["nope"]), ValueError, "nope"),
    ]
    return [pytest.param(fn, exc, text, id=case_id) for case_id, fn, exc, text in rows]


CASES = _method_cases() + _cases_without_methods()


def _distinct(cases: list) -> set[str]:
    """Distinct bad inputs: a method case counts once whatever the number of methods it runs for."""
    per_method = {case[0] for case in METHOD_CASES}
    out = set()
    for case in cases:
        case_id = case.id
        for spec in registry.available():
            suffix = case_id[len(spec.name) + 1:]
            if case_id.startswith(spec.name + "-") and suffix in per_method:
                case_id = "method-" + suffix
        out.add(case_id)
    return out


def test_at_least_fifty_distinct_bad_inputs() -> None:
    assert len(_distinct(CASES)) >= 50


@pytest.mark.parametrize("fn, exc, text", CASES)
def test_bad_input_gets_one_line_naming_it(fn: Callable[[], object], exc: type, text: str) -> None:
    with pytest.raises(Exception) as info:
        fn()
    error = info.value
    assert type(error) is exc or (exc is ValueError and type(error).__name__ == "ValueError"), (
        f"expected {exc.__name__}, got {type(error).__name__}: {error}")
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    assert "\n" not in str(message), f"multi-line message: {message!r}"
    assert text in str(message), f"{text!r} not in {message!r}"
