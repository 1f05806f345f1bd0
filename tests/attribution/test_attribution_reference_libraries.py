"""Agreement with captum and pytorch-grad-cam on torchvision ResNet-18 and VGG-11 (random weights).

Matched conventions and documented differences:
* captum ``LayerGradCam``: no ReLU by default (``relu_attributions=False``) and layer resolution;
  we pass ``relu_attributions=True`` and upsample with ``LayerAttribution.interpolate`` (bilinear,
  ``align_corners=False``), which is our default pipeline.
* captum ``GuidedGradCam``: upsamples with ``interpolate_mode="nearest"`` by default (we use
  bilinear, as the paper); compared with ``upsample="nearest"`` and with bilinear on both sides.
  It runs two forward passes; we run one.
* captum ``GuidedBackprop`` overrides only ``nn.ReLU`` modules; these networks use no functional
  ReLU, so the results agree. ``Saliency`` returns ``|gradient|`` by default, as ours.
* pytorch-grad-cam ``GradCAM``: ReLU, then per image ``(m - min) / (1e-7 + max)`` at layer
  resolution, OpenCV bilinear resize, and the same normalisation again after averaging over
  layers. We reproduce that pipeline from ``grad_cam(..., upsample=None)``. Its forward hook
  stores the layer output without copying it, so when an in-place ReLU follows the layer (VGG's
  ``features[18]``) it combines the post-ReLU activation with the gradient w.r.t. the pre-ReLU
  output; there we compare at the ReLU (``features[19]``) and document the difference.
Tolerance: max abs difference <= 1e-5 after identical normalisation.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision

from xaisurvey.attribution import grad_cam, guided_backprop, guided_grad_cam, max_abs, minmax, saliency

captum_attr = pytest.importorskip("captum.attr")
pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")

TOL = 1e-5


@pytest.fixture(scope="module", params=["resnet18", "vgg11"])
def network(request):
    torch.manual_seed(0)
    model = getattr(torchvision.models, request.param)(weights=None).eval()
    # ResNet-18's last block; for VGG-11 an inner convolution followed by an in-place ReLU (the harder case).
    layer = model.layer4 if request.param == "resnet18" else model.features[18]
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return model, layer, x, [1, 7]


def quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns that it set requires_grad on the inputs
        return fn()


def test_grad_cam_agrees_with_captum_layer_grad_cam(network) -> None:
    model, layer, x, targets = network
    layer_maps = quiet(lambda: captum_attr.LayerGradCam(model, layer).attribute(x, target=targets, relu_attributions=True))
    ref = captum_attr.LayerAttribution.interpolate(layer_maps, (64, 64), interpolate_mode="bilinear")[:, 0]
    ours = grad_cam(model, x, targets, layer=layer)
    assert ours.shape == ref.shape
    assert (minmax(ours) - minmax(ref)).abs().max() <= TOL
    # Without ReLU (captum's default) the signed maps agree as well.
    raw = quiet(lambda: captum_attr.LayerGradCam(model, layer).attribute(x, target=targets))[:, 0]
    assert (max_abs(grad_cam(model, x, targets, layer=layer, relu=False, upsample=None)) - max_abs(raw)).abs().max() <= TOL


def test_grad_cam_agrees_with_pytorch_grad_cam(network) -> None:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, layer, x, targets = network

    def theirs(layer: torch.nn.Module) -> torch.Tensor:
        with GradCAM(model=model, target_layers=[layer]) as explainer:
            return torch.from_numpy(explainer(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets]))

    def their_scaling(m: torch.Tensor) -> torch.Tensor:
        m = m - m.amin(dim=(1, 2), keepdim=True)
        return m / (1e-7 + m.amax(dim=(1, 2), keepdim=True))

    def ours(layer: torch.nn.Module) -> torch.Tensor:
        m = grad_cam(model, x, targets, layer=layer, upsample=None)
        return their_scaling(F.interpolate(their_scaling(m)[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0])

    if isinstance(model, torchvision.models.VGG):
        # Documented difference: at a convolution followed by an in-place ReLU the peer mixes the
        # post-ReLU activation with the pre-ReLU gradient, so the maps differ completely ...
        assert (ours(layer) - theirs(layer)).abs().max() > 0.1
        layer = model.features[19]  # ... and agree at the ReLU itself, where no aliasing happens.
    assert (ours(layer) - theirs(layer)).abs().max() <= TOL


def test_guided_backprop_and_saliency_agree_with_captum(network) -> None:
    model, _, x, targets = network
    ref = quiet(lambda: captum_attr.GuidedBackprop(model).attribute(x, target=targets))
    assert (max_abs(guided_backprop(model, x, targets)) - max_abs(ref)).abs().max() <= TOL
    ref = quiet(lambda: captum_attr.Saliency(model).attribute(x, target=targets))
    assert (max_abs(saliency(model, x, targets)) - max_abs(ref)).abs().max() <= TOL


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_guided_grad_cam_agrees_with_captum(network, mode) -> None:
    model, layer, x, targets = network
    ref = quiet(lambda: captum_attr.GuidedGradCam(model, layer).attribute(x, target=targets, interpolate_mode=mode))
    ours = guided_grad_cam(model, x, targets, layer=layer, upsample=mode)
    assert ref.abs().max() > 0
    assert (max_abs(ours) - max_abs(ref)).abs().max() <= TOL
