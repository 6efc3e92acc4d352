"""Evaluation for lightning_distill: the Frechet distance, video metrics, protocols and reports."""

from eval.frechet import frechet_distance, frechet_distance_from_statistics, gaussian_statistics
from eval.weights import MetricResult, MissingWeightsError, resolve_weights

# fvd, fid and clip_score stay submodules (`from eval.fvd import fvd`): importing them pulls in
# open_clip and torch-fidelity, which `import eval` should not pay for.
__all__ = [
    "MetricResult",
    "MissingWeightsError",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "gaussian_statistics",
    "resolve_weights",
]
