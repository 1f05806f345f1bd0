"""Evaluating explanations: similarity of maps, sanity checks and their repairs,
faithfulness (deletion, insertion, ROAD), localisation, robustness, complexity, GradSUM;
``battery`` runs them all.

Every metric takes plain tensors or an ``explain(model, x, target)`` callable, so it
works with any attribution method of :mod:`xaisurvey.attribution` (or any other) and
with any ``nn.Module``.
"""

from .baselines import BASELINES, centre_map, random_map, sobel_map
from .complexity import discrete_entropy, gini
from .faithfulness import (
    Curve,
    area_under_curve,
    blend_ranked,
    centre_attribution,
    deletion_curve,
    insertion_curve,
    make_substrate,
    pixel_order,
    pixel_ranks,
    random_attribution,
    step_counts,
)
from .gradsum import GradSum, GradSumProfile, category_masks, gradsum, gradsum_profile
from .localisation import relevance_mass_accuracy, relevance_rank_accuracy
from .pointing import PointingResult, pointing_game, pointing_hit
from .randomisation import (
    efficient_mprt,
    fully_randomized,
    parameter_noise_map,
    smooth_mprt,
)
from .road import (
    NEIGHBOUR_WEIGHTS,
    RoadResult,
    noisy_linear_imputation,
    road_curves,
    road_inputs,
)
from .robustness import fragility, input_invariance, shift_absorbed_model
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
    "BASELINES",
    "centre_map",
    "random_map",
    "sobel_map",
    "discrete_entropy",
    "gini",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "efficient_mprt",
    "fully_randomized",
    "parameter_noise_map",
    "smooth_mprt",
    "NEIGHBOUR_WEIGHTS",
    "RoadResult",
    "noisy_linear_imputation",
    "road_curves",
    "road_inputs",
    "fragility",
    "input_invariance",
    "shift_absorbed_model",
    "Curve",
    "area_under_curve",
    "centre_attribution",
    "deletion_curve",
    "insertion_curve",
    "make_substrate",
    "pixel_order",
    "pixel_ranks",
    "step_counts",
    "blend_ranked",
    "random_attribution",
    "GradSum",
    "GradSumProfile",
    "category_masks",
    "gradsum",
    "gradsum_profile",
    "PointingResult",
    "pointing_game",
    "pointing_hit",
    "Explainer",
    "SanityResult",
    "cascading_randomization",
    "independent_randomization",
    "map_similarity",
    "parameter_layers",
    "randomize_layers",
    "sanity_check",
    "shuffled_labels",
    "normalize_map",
    "rank",
    "spearman",
    "ssim",
    "top_k_intersection",
]
