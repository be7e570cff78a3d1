"""Gaussian random fields with an RBF kernel: the random input functions of the operator targets.

Samples are drawn on a fine grid by a Cholesky factor of the kernel matrix (with the smallest
jitter that factorises, so the draw is deterministic for a given seed) and interpolated to the
points a solver or a sensor needs by a cubic spline.
"""

import numpy as np
from scipy.interpolate import CubicSpline


def rbf_kernel(x1: np.ndarray, x2: np.ndarray, length_scale: float, variance: float = 1.0) -> np.ndarray:
    """k(x, x') = variance * exp(-(x - x')^2 / (2 l^2))."""
    d = np.subtract.outer(np.asarray(x1, float), np.asarray(x2, float))
    return variance * np.exp(-0.5 * (d / length_scale) ** 2)


def cholesky_with_jitter(kernel: np.ndarray, jitter: float = 1e-12) -> np.ndarray:
    """Lower Cholesky factor of kernel + j*scale*I for the smallest j in jitter*10^k that works.

    RBF matrices on fine grids are numerically singular; escalating the jitter keeps the
    factor deterministic while adding as little variance as possible.
    """
    scale = float(np.mean(np.diag(kernel)))
    eye = np.eye(kernel.shape[0])
    j = jitter
    while j <= 1e-4:
        try:
            return np.linalg.cholesky(kernel + j * scale * eye)
        except np.linalg.LinAlgError:
            j *= 10.0
    raise np.linalg.LinAlgError("kernel matrix is not positive definite even with jitter 1e-4")


def sample_grf(rng: np.random.Generator, n_samples: int, x_fine: np.ndarray,
               length_scale: float, variance: float = 1.0) -> np.ndarray:
    """n_samples draws of a zero-mean GRF on x_fine, shape (n_samples, len(x_fine))."""
    if length_scale <= 0:
        raise ValueError(f"GRF length_scale must be > 0, got {length_scale}")
    chol = cholesky_with_jitter(rbf_kernel(x_fine, x_fine, length_scale, variance))
    xi = rng.standard_normal((n_samples, len(x_fine)))
    return xi @ chol.T


def interpolate(values_fine: np.ndarray, x_fine: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """Cubic-spline interpolation along the last axis (vectorised over samples)."""
    return CubicSpline(x_fine, values_fine, axis=-1)(x_new)
