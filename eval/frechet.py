"""The one Frechet distance every metric in this project uses (FVD, FID, toy-FVD).

    d^2 = ||mu_a - mu_b||^2 + trace(S_a + S_b - 2 sqrtm(S_a S_b))

computed in float64 with ``scipy.linalg.sqrtm`` as StyleGAN-V, common_metrics_on_video_quality and
torch-fidelity 0.3 take it. The covariance convention changes the number, so it is an argument:
``"unbiased"`` (divide by n-1: the TF original, torch-fidelity, common_metrics_on_video_quality) or
``"biased"`` (divide by n: StyleGAN-V's ``fvd2048_16f``).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import scipy.linalg

Covariance = Literal["unbiased", "biased"]


def _as_float64(features, name: str) -> np.ndarray:
    if hasattr(features, "detach"):  # a torch tensor, on any device
        features = features.detach().to("cpu").double().numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"frechet_distance: {name} must be (N, D) features, got shape {array.shape}")
    if array.shape[0] < 2:
        raise ValueError(
            f"frechet_distance: {name} needs at least 2 samples for a covariance, got {array.shape[0]}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"frechet_distance: {name} holds NaN or inf values")
    return array


def gaussian_statistics(features, covariance: Covariance = "unbiased") -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features, in float64."""
    array = _as_float64(features, "features")
    if covariance not in ("unbiased", "biased"):
        raise ValueError(f"frechet_distance: covariance must be 'unbiased' or 'biased', got {covariance!r}")
    ddof = 1 if covariance == "unbiased" else 0
    return array.mean(axis=0), np.cov(array, rowvar=False, ddof=ddof).reshape(array.shape[1], array.shape[1])


def frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """Frechet distance between two Gaussians given by their float64 statistics."""
    mean_term = float(np.sum((mu_a - mu_b) ** 2))
    with warnings.catch_warnings():
        # Fewer samples than dimensions make the product singular; the retry below handles it, and the
        # warning would repeat on every such call.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(root).all():
        # Singular products (fewer samples than dimensions) defeat sqrtm; pytorch-fid and torch-fidelity
        # 0.3 retry with 1e-6 on the diagonals, and so do we.
        offset = np.eye(sigma_a.shape[0]) * 1e-6
        root = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    # sqrtm of a product of PSD matrices is real up to round-off; the imaginary part is that round-off.
    return float(np.real(mean_term + np.trace(sigma_a + sigma_b - 2.0 * root)))


def frechet_distance(features_a, features_b, covariance: Covariance = "unbiased") -> float:
    """Frechet distance between the Gaussians fitted to two (N, D) feature sets (arrays or tensors).

    The distance is biased by N: compare numbers computed at equal sample counts.
    """
    a = _as_float64(features_a, "features_a")
    b = _as_float64(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: feature widths differ, {a.shape[1]} vs {b.shape[1]}")
    mu_a, sigma_a = gaussian_statistics(a, covariance)
    mu_b, sigma_b = gaussian_statistics(b, covariance)
    return frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b)
