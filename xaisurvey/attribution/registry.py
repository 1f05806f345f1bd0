"""The method registry: one table that describes every attribution method of the
package.

The command line (``xaisurvey explain --method``), the benchmark's task list, the API
page, the evaluation chapters and the shared contract tests
(``tests/attribution/test_contract.py``) all read :data:`METHODS`. Adding a method is
one module in :mod:`xaisurvey.attribution` plus one :class:`MethodSpec` entry in
``_TABLE`` below; the contract tests then check it without another line (batch
independence, target forms, dtypes, flat inputs, the model left unchanged).

Example:
    >>> from xaisurvey.attribution import registry
    >>> spec = registry.get("grad-cam")          # the CLI spelling works too
    >>> spec.name, spec.family, spec.needs_layer, spec.floor
    ('grad_cam', 'cam', True, 'backward_to_layer')
    >>> [s.name for s in registry.available(family="gradient")][:2]
    ['saliency', 'smoothgrad']
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .ablation_cam import ablation_cam
from .cam import cam
from .grad_cam import grad_cam
from .grad_cam_plusplus import grad_cam_plusplus
from .guided_backprop import guided_backprop
from .deeplift import deeplift
from .expected_gradients import expected_gradients
from .gradient_x_input import gradient_x_input
from .guided_grad_cam import guided_grad_cam
from .lrp import lrp
from .kernel_shap import kernel_shap
from .lime import lime
from .integrated_gradients import integrated_gradients
from .hires_cam import hires_cam
from .layer_cam import layer_cam
from .normalize import reduce_channels
from .occlusion import occlusion, occlusion_windows
from .rise import rise
from .saliency import saliency
from .score_cam import score_cam
from .smoothgrad import smoothgrad
from .visual_backprop import visual_backprop
from .xgrad_cam import xgrad_cam

__all__ = [
    "MethodSpec",
    "FAMILIES",
    "FLOORS",
    "METHODS",
    "get",
    "available",
    "explain",
    "cost_passes",
]

#: The families of the taxonomy (the synthesis chapter groups methods by them).
FAMILIES = {
    "gradient": (
        "gradients of the score w.r.t. the input, possibly with modified backward rules"
    ),
    "cam": "feature maps of one layer weighted per channel (class activation mapping)",
    "activation": "feature maps alone, no class and no gradient",
    "perturbation": (
        "the change of the score when parts of the input are removed (black box)"
    ),
    "path": "gradients integrated along a path from a baseline to the input",
    "relevance": "the score redistributed layer by layer by propagation rules",
}

#: The cost floors, the least work any implementation of the method needs, measured by
#: the benchmark.
FLOORS = {
    "forward": "one forward pass without gradients",
    "backward_to_layer": (
        "one forward pass and one backward pass that stops at the layer"
    ),
    "backward_to_input": "one forward pass and one backward pass to the input",
    "n_forward": "n forward passes of the (perturbed) batch, no gradients",
    "n_backward_to_input": "n forward and backward passes to the input",
    "n_backward_to_layer": "n forward and backward passes that stop at the layer",
}


@dataclass(frozen=True)
class MethodSpec:
    """One attribution method, as the rest of the package sees it.

    Attributes:
        name: the Python name, e.g. ``"grad_cam"`` (the CLI spells it ``"grad-cam"``).
        function: ``f(model, x, target, **options) -> torch.Tensor``.
        family: a key of :data:`FAMILIES`.
        needs_layer: the function takes a required ``layer=`` (a module or dotted name).
        class_sensitive: the map depends on the target class by construction (``False``
            for VisualBackProp, which ignores the target).
        floor: a key of :data:`FLOORS`; with ``passes`` it gives the cost floor.
        output: ``"map"`` for (N, H, W) or ``"input"`` for (N, C, H, W) attributions.
        paper: the reference, as cited in the book.
        to_map: the channel reduction (a :func:`reduce_channels` name) that turns an
            ``"input"`` attribution into one map per image for display and evaluation.
        defaults: options the book, the CLI and the evaluation use (the function's
            defaults when empty).
        quick: options that make the method cheap for the tests (fewer samples or
            steps).
        evaluation: options the evaluation battery uses (settings chosen to fit the
            book's time budget, stated in the evaluation chapters); the ``defaults``
            when empty.
        evaluation_layers: layers the evaluation battery uses instead of its models'
            default target layers, by model (``"mnist"``, ``"imagenet"``, ``"world"``):
            for a method whose cost grows with the layer's channels (one forward pass
            per channel).
        passes: the ``n`` of an ``n_*`` floor from the options in use.
        evaluated: the evaluation battery (Part IV) includes the method (every method
            does: the battery calls each a few hundred times, so the ones that pay a
            forward pass per sample or channel run there at lighter ``evaluation``
            settings, or on a layer with fewer channels, ``evaluation_layers``; the
            synthesis chapter states them). ``False`` leaves a method out of the
            battery; the evaluation chapters then name it.
        accepts_callable_target: callables on the output are allowed as targets.
    """

    name: str
    function: Callable[..., torch.Tensor]
    family: str
    needs_layer: bool
    class_sensitive: bool
    floor: str
    output: str
    paper: str
    to_map: str = "max_abs"
    defaults: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    evaluation_layers: dict[str, str] = field(default_factory=dict)
    passes: Callable[[dict[str, Any]], int] | None = None
    evaluated: bool = True
    accepts_callable_target: bool = True

    @property
    def cli_name(self) -> str:
        return self.name.replace("_", "-")

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"method {self.name!r}: unknown family {self.family!r}")
        if self.floor not in FLOORS:
            raise ValueError(f"method {self.name!r}: unknown floor {self.floor!r}")
        if self.output not in ("map", "input"):
            raise ValueError(f"method {self.name!r}: output must be 'map' or 'input'")
        if self.floor.startswith("n_") and self.passes is None:
            raise ValueError(f"method {self.name!r}: an n-pass floor needs passes=")


_TABLE: list[MethodSpec] = [
    MethodSpec(
        name="saliency",
        function=saliency,
        family="gradient",
        needs_layer=False,
        class_sensitive=True,
        floor="backward_to_input",
        output="input",
        paper="Simonyan, Vedaldi and Zisserman (2014)",
    ),
    MethodSpec(
        name="smoothgrad",
        function=smoothgrad,
        family="gradient",
        needs_layer=False,
        class_sensitive=True,
        floor="n_backward_to_input",
        output="input",
        paper="Smilkov et al. (2017)",
        defaults={"samples": 50, "noise_level": 0.15},
        quick={"samples": 3},
        evaluation={"samples": 10},
        passes=lambda options: int(options.get("samples", 50)),
    ),
    MethodSpec(
        name="guided_backprop",
        function=guided_backprop,
        family="gradient",
        needs_layer=False,
        class_sensitive=True,
        floor="backward_to_input",
        output="input",
        paper="Springenberg et al. (2015)",
    ),
    MethodSpec(
        name="cam",
        function=cam,
        family="cam",
        needs_layer=False,
        class_sensitive=True,
        floor="forward",
        output="map",
        paper="Zhou et al. (2016)",
        accepts_callable_target=False,
    ),
    MethodSpec(
        name="grad_cam",
        function=grad_cam,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="backward_to_layer",
        output="map",
        paper="Selvaraju et al. (2017)",
    ),
    MethodSpec(
        name="guided_grad_cam",
        function=guided_grad_cam,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="backward_to_input",
        output="input",
        paper="Selvaraju et al. (2017)",
    ),
    MethodSpec(
        name="visual_backprop",
        function=visual_backprop,
        family="activation",
        needs_layer=False,
        class_sensitive=False,
        floor="forward",
        output="map",
        paper="Bojarski et al. (2016)",
    ),
    # --- relevance (issue 15)
    MethodSpec(
        name="lrp",
        function=lrp,
        family="relevance",
        needs_layer=False,
        class_sensitive=True,
        floor="backward_to_input",
        output="input",
        paper="Bach et al. (2015); Montavon et al. (2019)",
        to_map="sum",
        defaults={"composite": "epsilon_gamma_box"},
    ),
    # --- perturbation (issue 14) ``passes`` counts forward passes of one image (the
    # floor runs them in chunks of batch_size); occlusion's depends on the image size
    # and is given for 224 x 224 images. The ``evaluation`` settings keep the evaluation
    # battery within the book's budget (the battery calls each method on about 210
    # ImageNet images, so every pass per image costs about a second).
    MethodSpec(
        name="occlusion",
        function=occlusion,
        family="perturbation",
        needs_layer=False,
        class_sensitive=True,
        floor="n_forward",
        output="map",
        paper="Zeiler and Fergus (2014)",
        defaults={"window": 32, "stride": 16, "baseline": 0.5},
        quick={"window": 4, "stride": 4},
        # a quarter of the image, half-overlapping: 49 windows on any image size (the
        # battery runs it on 28 and on 224 px images within the book's time budget)
        evaluation={"window": 0.25, "stride": 0.125, "baseline": 0.5},
        passes=lambda o: occlusion_windows(
            (224, 224), o.get("window", 32), o.get("stride", 16)
        )
        + 1,
    ),
    MethodSpec(
        name="rise",
        function=rise,
        family="perturbation",
        needs_layer=False,
        class_sensitive=True,
        floor="n_forward",
        output="map",
        paper="Petsiuk, Das and Saenko (2018)",
        defaults={"samples": 4000, "grid": 7, "probability": 0.5},
        quick={"samples": 8, "grid": 2},
        evaluation={"samples": 32, "grid": 7, "probability": 0.5},
        passes=lambda o: int(o.get("samples", 4000)),
    ),
    MethodSpec(
        name="lime",
        function=lime,
        family="perturbation",
        needs_layer=False,
        class_sensitive=True,
        floor="n_forward",
        output="map",
        paper="Ribeiro, Singh and Guestrin (2016)",
        defaults={"samples": 1000, "segments": "slic", "n_segments": 50},
        quick={"samples": 8, "segments": "grid", "n_segments": 4},
        evaluation={"samples": 32, "segments": "slic", "n_segments": 16},
        passes=lambda o: int(o.get("samples", 1000)),
    ),
    MethodSpec(
        name="kernel_shap",
        function=kernel_shap,
        family="perturbation",
        needs_layer=False,
        class_sensitive=True,
        floor="n_forward",
        output="map",
        paper="Lundberg and Lee (2017)",
        defaults={"samples": 1000, "segments": "slic", "n_segments": 50},
        quick={"samples": 8, "segments": "grid", "n_segments": 4},
        evaluation={"samples": 32, "segments": "slic", "n_segments": 16},
        passes=lambda o: int(o.get("samples", 1000)),
    ),
    # --- path (issue 15)
    MethodSpec(
        name="gradient_x_input",
        function=gradient_x_input,
        family="path",
        needs_layer=False,
        class_sensitive=True,
        floor="backward_to_input",
        output="input",
        paper="Shrikumar et al. (2016); Ancona et al. (2018)",
    ),
    MethodSpec(
        name="integrated_gradients",
        function=integrated_gradients,
        family="path",
        needs_layer=False,
        class_sensitive=True,
        floor="n_backward_to_input",
        output="input",
        paper="Sundararajan, Taly and Yan (2017)",
        defaults={"steps": 50, "rule": "gausslegendre", "baseline": "black"},
        quick={"steps": 4},
        evaluation={"steps": 16, "rule": "gausslegendre", "baseline": "black"},
        passes=lambda options: int(options.get("steps", 50)),
    ),
    MethodSpec(
        name="expected_gradients",
        function=expected_gradients,
        family="path",
        needs_layer=False,
        class_sensitive=True,
        floor="n_backward_to_input",
        output="input",
        paper="Erion et al. (2021)",
        defaults={"samples": 50},
        quick={"samples": 4},
        evaluation={"samples": 16},
        passes=lambda options: int(options.get("samples", 50)),
    ),
    MethodSpec(
        name="deeplift",
        function=deeplift,
        family="path",
        needs_layer=False,
        class_sensitive=True,
        floor="backward_to_input",
        output="input",
        paper="Shrikumar, Greenside and Kundaje (2017)",
    ),
    # --- cam (issue 14)
    MethodSpec(
        name="grad_cam_plusplus",
        function=grad_cam_plusplus,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="backward_to_layer",
        output="map",
        paper="Chattopadhay et al. (2018)",
    ),
    MethodSpec(
        name="xgrad_cam",
        function=xgrad_cam,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="backward_to_layer",
        output="map",
        paper="Fu et al. (2020)",
    ),
    MethodSpec(
        name="layer_cam",
        function=layer_cam,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="backward_to_layer",
        output="map",
        paper="Jiang et al. (2021)",
    ),
    MethodSpec(
        name="hires_cam",
        function=hires_cam,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="backward_to_layer",
        output="map",
        paper="Draelos and Carin (2020)",
    ),
    # Score-CAM and Ablation-CAM: one forward pass per channel of the layer and image.
    # ``passes`` cannot know the layer's channel count from the options, so it reports
    # passes per channel (1); the benchmark's floors run N * K passes of the same batch
    # size. The battery runs them on MobileNet's ``stage1.3`` (32 channels at 56 x 56)
    # instead of ``stage3`` (256).
    MethodSpec(
        name="score_cam",
        function=score_cam,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="n_forward",
        output="map",
        paper="Wang et al. (2020)",
        defaults={"batch_size": 32},
        quick={"batch_size": 8},
        passes=lambda options: 1,
        evaluation_layers={"imagenet": "stage1.3"},
    ),
    MethodSpec(
        name="ablation_cam",
        function=ablation_cam,
        family="cam",
        needs_layer=True,
        class_sensitive=True,
        floor="n_forward",
        output="map",
        paper="Desai and Ramaswamy (2020)",
        defaults={"batch_size": 32},
        quick={"batch_size": 8},
        passes=lambda options: 1,
        evaluation_layers={"imagenet": "stage1.3"},
    ),
]

#: Every registered method by name, family by family in the order of ``FAMILIES``
#: (the book's).
METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in sorted(_TABLE, key=lambda spec: list(FAMILIES).index(spec.family))
}


def get(name: str) -> MethodSpec:
    """The spec of ``name`` (``"grad_cam"`` or the CLI spelling ``"grad-cam"``).

    Raises:
        KeyError: unknown name; the message lists close matches.
    """
    if not isinstance(name, str):
        raise TypeError(f"method name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key in METHODS:
        return METHODS[key]
    close = difflib.get_close_matches(key, list(METHODS), n=3)
    hint = (
        f"; did you mean {', '.join(c.replace('_', '-') for c in close)}?"
        if close
        else ""
    )
    raise KeyError(
        f"unknown method {name!r}{hint} (known:"
        f" {', '.join(s.cli_name for s in METHODS.values())})"
    )


def available(*, family: str | None = None) -> list[MethodSpec]:
    """The registered methods, in the book's order, optionally of one ``family``."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; families: {', '.join(FAMILIES)}")
    return [s for s in METHODS.values() if family is None or s.family == family]


def cost_passes(spec: MethodSpec, options: dict[str, Any] | None = None) -> int:
    """How many passes of the floor's kind the method needs with ``options`` (1 for
    single-pass floors)."""
    if spec.passes is None:
        return 1
    return spec.passes({**spec.defaults, **(options or {})})


def explain(
    name: str,
    model: nn.Module,
    x: torch.Tensor,
    target: Any,
    *,
    layer: nn.Module | str | None = None,
    **options: Any,
) -> torch.Tensor:
    """Run the registered method ``name`` and return one map per image, (N, H, W).

    The spec's ``defaults`` are used unless ``options`` override them; ``layer`` is
    passed to methods that need one (and must then be given); ``"input"`` attributions
    are reduced over the channels with the spec's ``to_map``.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1),
        ...     torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ...     torch.nn.Linear(4, 2),
        ... )
        >>> explain("grad-cam", net, torch.rand(2, 3, 8, 8), 1, layer="1").shape
        torch.Size([2, 8, 8])
    """
    spec = get(name)
    kwargs = {**spec.defaults, **options}
    if spec.needs_layer:
        if layer is None:
            raise ValueError(
                f"{spec.name}: needs layer= (a module of the model or its dotted name)"
            )
        kwargs["layer"] = layer
    elif layer is not None:
        raise ValueError(f"{spec.name}: takes no layer (got layer={layer!r})")
    result = spec.function(model, x, target, **kwargs)
    if spec.output == "input":
        result = reduce_channels(result, spec.to_map)
    return result
