"""The one Frechet distance (eval.frechet_distance) against an independent float64 computation."""

import numpy as np
import pytest
import torch

from eval import frechet_distance


def _independent_frechet(a: np.ndarray, b: np.ndarray, ddof: int) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(sqrt(S_a) S_b sqrt(S_a)), through eigenvalues.

    sqrt(S_a) S_b sqrt(S_a) is symmetric PSD and similar to S_a S_b, so the trace of the square root of
    S_a S_b is the sum of the square roots of its eigenvalues: no sqrtm involved.
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    centred_a, centred_b = a - mu_a, b - mu_b
    sigma_a = centred_a.T @ centred_a / (len(a) - ddof)
    sigma_b = centred_b.T @ centred_b / (len(b) - ddof)
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root_a @ sigma_b @ root_a)
    trace_root = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_root)


def _features(seed: int, n: int = 300, d: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d))  # correlated features, so the covariances are far from diagonal
    return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d)


@pytest.mark.parametrize(("covariance", "ddof"), [("unbiased", 1), ("biased", 0)])
def test_matches_independent_eigenvalue_computation(covariance, ddof):
    a, b = _features(0), _features(1, n=250)
    expected = _independent_frechet(a, b, ddof)
    assert expected > 1.0
    assert frechet_distance(a, b, covariance) == pytest.approx(expected, rel=1e-8)


def test_identical_sets_give_zero():
    a = _features(2)
    assert abs(frechet_distance(a, a.copy())) < 1e-8


def test_shifted_mean_gives_the_squared_shift():
    a = _features(3)
    shift = np.linspace(-2.0, 3.0, a.shape[1])
    assert frechet_distance(a, a + shift) == pytest.approx(float((shift**2).sum()), rel=1e-8)


def test_biased_covariance_scales_the_trace_term_by_n_minus_1_over_n():
    # With equal N both covariances scale by c = (N - 1) / N, and tr(cA + cB - 2 sqrt(c^2 AB)) scales by c.
    a, b = _features(4, n=40), _features(5, n=40)
    mean_term = float(((a.mean(0) - b.mean(0)) ** 2).sum())
    unbiased = frechet_distance(a, b, "unbiased")
    biased = frechet_distance(a, b, "biased")
    assert biased < unbiased
    assert biased - mean_term == pytest.approx((unbiased - mean_term) * 39 / 40, rel=1e-7)


def test_tensors_and_arrays_agree():
    a, b = _features(6, n=50), _features(7, n=60)
    from_tensors = frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert from_tensors == pytest.approx(
        frechet_distance(a.astype(np.float32), b.astype(np.float32)), rel=1e-9
    )


def test_fewer_samples_than_dimensions_stays_finite_and_close():
    # Singular covariances (N < D): sqrtm may fail and the distance retries with 1e-6 on the diagonals.
    a, b = _features(8, n=10, d=32), _features(9, n=12, d=32)
    value = frechet_distance(a, b)
    assert np.isfinite(value)
    assert value == pytest.approx(_independent_frechet(a, b, 1), rel=1e-4)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2 samples"),
        (np.zeros((5, 4)), np.zeros((5, 3)), "widths differ"),
        (np.zeros((5, 4, 1)), np.zeros((5, 4)), r"\(N, D\)"),
        (np.full((5, 4), np.nan), np.zeros((5, 4)), "NaN"),
    ],
)
def test_bad_features_raise_one_clear_error(a, b, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(a, b)


def test_unknown_covariance_convention_is_named():
    with pytest.raises(ValueError, match="covariance must be"):
        frechet_distance(_features(10), _features(11), covariance="n-1")
