"""Attribution methods: which pixels (or feature-map positions) explain a network's
output.

Every method is ``f(model, x, target, **options) ->
torch.Tensor`` with ``x`` a float batch (N, C, H, W) and ``target`` an int, one int per
image, or a callable on the model output. Map methods (the CAM family, VisualBackProp
and the perturbation methods) return (N, H, W); input-space methods (gradients, Guided
Backprop, Guided Grad-CAM, path and relevance methods) return (N, C, H, W) unless asked
to reduce channels: each method's ``output`` in the registry says which. Nothing is
normalised inside a method: see the helpers :func:`minmax`, :func:`max_abs` and
:func:`reduce_channels`. The user's model is left exactly as it was. A model wrapped in
``nn.DataParallel`` or ``DistributedDataParallel`` is refused with a one-line
``TypeError`` (the replicas run where the methods' hooks and backward rules do not
reach): pass ``model.module``.

:mod:`xaisurvey.attribution.registry` describes every method (family, layer, class
sensitivity, cost floor) and drives the command line, the benchmark, the evaluation and
the shared contract tests; :func:`explain` runs any registered method by name and
returns one map per image.
"""

from .ablation_cam import AblationCAMWarning, ablation_cam
from .cam import cam
from .grad_cam import grad_cam
from .grad_cam_plusplus import grad_cam_plusplus
from .guided_backprop import GuidedBackpropWarning, guided_backprop
from .guided_grad_cam import guided_grad_cam
from .lrp import lrp, relevance_by_layer
from .kernel_shap import kernel_shap
from .lime import lime
from .gradient_x_input import gradient_x_input
from .integrated_gradients import (
    completeness_gap,
    integrated_gradients,
    path_baseline,
    path_rule,
)
from .expected_gradients import expected_gradients
from .deeplift import DeepLiftWarning, deeplift
from .hires_cam import hires_cam
from .layer_cam import layer_cam
from .normalize import max_abs, minmax, reduce_channels
from .occlusion import occlusion
from .rise import rise, rise_masks
from .saliency import saliency
from .score_cam import score_cam
from .smoothgrad import smoothgrad
from .visual_backprop import visual_backprop
from .xgrad_cam import xgrad_cam
from ._core import ZeroMapWarning
from . import registry  # noqa: E402  (after the methods it lists)
from .registry import MethodSpec, available, explain

__all__ = [
    "saliency",
    "smoothgrad",
    "cam",
    "grad_cam",
    "guided_backprop",
    "guided_grad_cam",
    "visual_backprop",
    "lrp",
    "relevance_by_layer",
    "occlusion",
    "rise",
    "rise_masks",
    "lime",
    "kernel_shap",
    "gradient_x_input",
    "integrated_gradients",
    "expected_gradients",
    "deeplift",
    "completeness_gap",
    "path_rule",
    "path_baseline",
    "DeepLiftWarning",
    "grad_cam_plusplus",
    "xgrad_cam",
    "layer_cam",
    "hires_cam",
    "score_cam",
    "ablation_cam",
    "AblationCAMWarning",
    "GuidedBackpropWarning",
    "ZeroMapWarning",
    "minmax",
    "max_abs",
    "reduce_channels",
    "registry",
    "MethodSpec",
    "available",
    "explain",
]
