"""Attribution methods: which pixels (or feature-map positions) explain a network's output.

Every method is ``f(model, x, target, **options) -> torch.Tensor`` with ``x`` a float batch
(N, C, H, W) and ``target`` an int, one int per image, or a callable on the model output.
Map methods (``cam``, ``grad_cam``, ``visual_backprop``) return (N, H, W); input-space methods
(``saliency``, ``smoothgrad``, ``guided_backprop``, ``guided_grad_cam``) return (N, C, H, W)
unless asked to reduce channels. Nothing is normalised inside a method: see the helpers
:func:`minmax`, :func:`max_abs` and :func:`reduce_channels`. The user's model is left exactly as
it was. A model wrapped in ``nn.DataParallel`` or ``DistributedDataParallel`` is refused with a
one-line ``TypeError`` (the replicas run where the methods' hooks and backward rules do not
reach): pass ``model.module``.

:mod:`xaisurvey.attribution.registry` describes every method (family, layer, class
sensitivity, cost floor) and drives the command line, the benchmark, the evaluation and the
shared contract tests; :func:`explain` runs any registered method by name and returns one map
per image.
"""
from .cam import cam
from .grad_cam import grad_cam
from .guided_backprop import GuidedBackpropWarning, guided_backprop
from .guided_grad_cam import guided_grad_cam
from .normalize import max_abs, minmax, reduce_channels
from .saliency import saliency
from .smoothgrad import smoothgrad
from .visual_backprop import visual_backprop
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
    "GuidedBackpropWarning",
    "minmax",
    "max_abs",
    "reduce_channels",
    "registry",
    "MethodSpec",
    "available",
    "explain",
]
