"""Evaluating explanations: similarity of maps, sanity checks, faithfulness, pointing game, GradSUM.

Every metric takes plain tensors or an ``explain(model, x, target)`` callable, so it works with
any attribution method of :mod:`xaisurvey.attribution` (or any other) and with any ``nn.Module``.
"""
from .faithfulness import (
    Curve,
    area_under_curve,
    centre_attribution,
    deletion_curve,
    insertion_curve,
    make_substrate,
    pixel_order,
    random_attribution,
)
from .gradsum import GradSum, GradSumProfile, category_masks, gradsum, gradsum_profile
from .pointing import PointingResult, pointing_game, pointing_hit
from .sanity import (
    Explainer,
    SanityResult,
    cascading_randomization,
    independent_randomization,
    map_similarity,
    parameter_layers,
    randomize_layers,
    sanity_check,
    shuffled_labels,
)
from .similarity import normalize_map, rank, spearman, ssim, top_k_intersection

__all__ = [
    "Curve", "area_under_curve", "centre_attribution", "deletion_curve", "insertion_curve",
    "make_substrate", "pixel_order", "random_attribution",
    "GradSum", "GradSumProfile", "category_masks", "gradsum", "gradsum_profile",
    "PointingResult", "pointing_game", "pointing_hit",
    "Explainer", "SanityResult", "cascading_randomization", "independent_randomization",
    "map_similarity", "parameter_layers", "randomize_layers", "sanity_check", "shuffled_labels",
    "normalize_map", "rank", "spearman", "ssim", "top_k_intersection",
]
