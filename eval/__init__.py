"""Evaluation for lightning_distill: the Frechet distance, video metrics, protocols and reports."""

from eval.frechet import frechet_distance, frechet_distance_from_statistics, gaussian_statistics

__all__ = ["frechet_distance", "frechet_distance_from_statistics", "gaussian_statistics"]
