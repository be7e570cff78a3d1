"""Family ``heat1d``: u_t = u_xx / pi^2 on [0, 1], u(0, t) = u(1, t) = 0, u(x, 0) = u0 = g 4x(1-x), g ~ GRF.

The sine series diagonalises the problem: u0 = sum b_n sin(n pi x) gives u = sum b_n
exp(-n^2 t) sin(n pi x). The b_n come from a type-1 discrete sine transform of u0 on a fine
grid, truncated at ``modes``. The stored input ``a`` is that truncated series itself, so ``u``
is the exact solution of the stored input up to rounding; the series differs from g 4x(1-x) by
the truncation and aliasing error (largest at t = 0, gone after a few time steps).
"""

import numpy as np
import xarray as xr
from scipy.fft import dst

from fwdsnn.pdes import ParameterError
from fwdsnn.pdes.dataset import operator_dataset
from fwdsnn.pdes.grf import sample_grf


def check(params: dict) -> None:
    if params["modes"] > params["fine_points"] - 2:
        raise ParameterError("modes", f"{params['modes']} sine modes need fine_points >= modes + 2 "
                                      f"(fine_points is {params['fine_points']})")


def sine_coefficients(u0_values: np.ndarray, modes: int) -> np.ndarray:
    """b_1..b_modes of u0 = sum b_n sin(n pi x) from samples on linspace(0, 1, N + 1) (last axis).

    The DST-I is the trapezoidal rule for b_n = 2 int_0^1 u0 sin(n pi x) dx; its only error is
    aliasing of the modes beyond N. The endpoint samples are not used: the boundary data
    say they are zero.
    """
    u0_values = np.asarray(u0_values, dtype=np.float64)
    n_intervals = u0_values.shape[-1] - 1
    if not 1 <= modes <= n_intervals - 1:
        raise ValueError(f"modes must be in [1, {n_intervals - 1}] for {n_intervals + 1} grid points, got {modes}")
    return dst(u0_values[..., 1:-1], type=1, axis=-1)[..., :modes] / n_intervals


def heat_solution(coeffs: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """u(x, t) = sum_n b_n exp(-n^2 t) sin(n pi x) for coeffs (..., modes); shape (..., len(x), len(t))."""
    coeffs = np.asarray(coeffs, dtype=np.float64)
    n = np.arange(1, coeffs.shape[-1] + 1, dtype=np.float64)
    sines = np.sin(np.pi * np.outer(np.asarray(x, dtype=np.float64), n))
    decay = np.exp(-np.outer(np.asarray(t, dtype=np.float64), n**2))
    return np.swapaxes((coeffs[..., None, :] * decay) @ sines.T, -1, -2)


def generate(params: dict, n_samples: int, rng: np.random.Generator) -> xr.Dataset:
    """a = u0 at n_sensors equispaced sensors and u on the (nx, nt) grid of [0, 1] x [0, t_max]."""
    p, grf = params, params["grf"]
    x_fine = np.linspace(0.0, 1.0, p["fine_points"])
    g = sample_grf(rng, n_samples, x_fine, grf["length_scale"], grf["variance"])
    coeffs = sine_coefficients(g * 4.0 * x_fine * (1.0 - x_fine), p["modes"])

    sensors = np.linspace(0.0, 1.0, p["n_sensors"])
    x = np.linspace(0.0, 1.0, p["nx"])
    t = np.linspace(0.0, p["t_max"], p["nt"])
    return operator_dataset(heat_solution(coeffs, sensors, [0.0])[..., 0], sensors,
                            heat_solution(coeffs, x, t), x, t,
                            a_name="initial condition u0 = u(x, 0)", u_name="temperature u(x, t)",
                            equation="u_t = u_xx / pi^2 on [0, 1], u(0, t) = u(1, t) = 0, u(x, 0) = a")
