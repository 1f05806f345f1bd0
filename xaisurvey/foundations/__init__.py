"""Part I of the book in code: gradient descent, perceptron, MLP with backpropagation, convolution,
pooling and receptive fields, written from scratch in NumPy (PyTorch only as an independent check
and for measuring receptive fields of real ``nn.Module`` stacks)."""
from .blocks import (
    AdamState,
    adam_step,
    batch_norm,
    conv_cost,
    conv_transpose2d,
    cross_entropy,
    cross_entropy_grad,
    depthwise_conv,
    global_avg_pool,
    pointwise_conv,
    residual,
    sgd_step,
    softmax,
)
from .convolution import (
    PadMode,
    conv2d_layer,
    conv_output_size,
    convolve1d,
    convolve2d,
    correlate1d,
    correlate2d,
    mean_filter,
    pad,
)
from .gradient_descent import GDResult, Quadratic, gradient_descent, quadratic_critical_lr
from .mlp import (
    MLP,
    TrainHistory,
    autograd_gradients,
    finite_difference_gradients,
    hand_built_xor,
    init_mlp,
    mlp_backward,
    mlp_forward,
    mlp_loss,
    mlp_predict_proba,
    train_mlp,
)
from .perceptron import XOR_INPUTS, XOR_TARGETS, PerceptronResult, perceptron_predict, step, train_perceptron
from .pooling import avg_pool2d, max_pool2d, pool2d
from .receptive_field import (
    RFLayer,
    RFMeasurement,
    StackedFit,
    compose_kernels,
    fit_stacked_kernels,
    layer_geometry,
    measure_receptive_field,
    receptive_field,
)

__all__ = [
    "AdamState", "adam_step", "batch_norm", "conv_cost", "conv_transpose2d", "cross_entropy",
    "cross_entropy_grad", "depthwise_conv", "global_avg_pool", "pointwise_conv", "residual", "sgd_step",
    "softmax",
    "PadMode", "conv2d_layer", "conv_output_size", "convolve1d", "convolve2d", "correlate1d", "correlate2d",
    "mean_filter", "pad",
    "GDResult", "Quadratic", "gradient_descent", "quadratic_critical_lr",
    "MLP", "TrainHistory", "autograd_gradients", "finite_difference_gradients", "hand_built_xor", "init_mlp",
    "mlp_backward", "mlp_forward", "mlp_loss", "mlp_predict_proba", "train_mlp",
    "XOR_INPUTS", "XOR_TARGETS", "PerceptronResult", "perceptron_predict", "step", "train_perceptron",
    "avg_pool2d", "max_pool2d", "pool2d",
    "RFLayer", "RFMeasurement", "StackedFit", "compose_kernels", "fit_stacked_kernels", "layer_geometry",
    "measure_receptive_field", "receptive_field",
]
