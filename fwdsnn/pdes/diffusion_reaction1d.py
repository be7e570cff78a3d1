"""Diffusion-reaction operator a -> u for u_t = D u_xx + k u^2 + a(x), u = 0 initially and at x = 0, 1.

Crank-Nicolson in time with the reaction taken as k u^n u^{n+1}: u^n u^{n+1} differs from u^2 at
the half step by O(dt^2), so the scheme stays second order while each step is one linear
tridiagonal solve. The matrix depends on u^n, i.e. on the sample, so the solves are batched
Thomas sweeps vectorised over samples.
"""

import numpy as np
import xarray as xr

from fwdsnn.pdes.dataset import operator_dataset
from fwdsnn.pdes.grf import interpolate, sample_grf


def solve_tridiagonal(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Thomas algorithm for systems along axis 0, vectorised over the trailing (batch) axes.

    Row i reads lower[i] x[i-1] + diag[i] x[i] + upper[i] x[i+1] = rhs[i] (lower[0] and upper[-1]
    are ignored); coefficients broadcast against rhs. No pivoting, so the matrix must be
    diagonally dominant, which the Crank-Nicolson matrices are while dt k u < 1.
    """
    lower, diag, upper = (np.broadcast_to(v, rhs.shape) for v in (lower, diag, upper))
    c = np.empty(rhs.shape)
    d = np.empty(rhs.shape)
    c[0] = upper[0] / diag[0]
    d[0] = rhs[0] / diag[0]
    for i in range(1, rhs.shape[0]):
        m = diag[i] - lower[i] * c[i - 1]
        c[i] = upper[i] / m
        d[i] = (rhs[i] - lower[i] * d[i - 1]) / m
    for i in range(rhs.shape[0] - 2, -1, -1):
        d[i] -= c[i] * d[i + 1]
    return d


def solve_diffusion_reaction(source: np.ndarray, x: np.ndarray, t: np.ndarray, D: float, k: float,
                             stride: int = 1) -> np.ndarray:
    """u(sample, x[::stride], t[::stride]) on the uniform grid x and the increasing times t.

    source has shape (sample, len(x), len(t)); a steady source may pass a length-1 t axis. It
    enters each step as the trapezoidal mean of its two end values (second order). stride keeps
    only every stride-th point so a refined solve never holds its whole fine solution.
    """
    x = np.asarray(x, float)
    t = np.asarray(t, float)
    h = x[1] - x[0]
    if not np.allclose(np.diff(x), h):
        raise ValueError("x must be uniform")
    if (len(x) - 1) % stride or (len(t) - 1) % stride:
        raise ValueError(f"stride {stride} must divide the {len(x) - 1} x and {len(t) - 1} t intervals")
    source = np.broadcast_to(np.asarray(source, float), (len(source), len(x), len(t)))
    f = np.moveaxis(source[:, 1:-1, :], 0, 1)  # (interior x, sample, t): the Thomas axis first
    v = np.zeros(f.shape[:2])
    out = np.zeros((len(x[::stride]), len(t[::stride]), len(source)))
    for n in range(len(t) - 1):
        dt = t[n + 1] - t[n]
        r = 0.5 * D * dt / h**2
        lap = -2.0 * v
        lap[1:] += v[:-1]
        lap[:-1] += v[1:]
        rhs = v + r * lap + 0.5 * dt * (f[..., n] + f[..., n + 1])
        v = solve_tridiagonal(-r, 1.0 + 2.0 * r - dt * k * v, -r, rhs)
        if (n + 1) % stride == 0:
            out[1:-1, (n + 1) // stride] = v[stride - 1::stride]
    return np.ascontiguousarray(np.moveaxis(out, 2, 0))


def generate(params: dict, n_samples: int, rng: np.random.Generator) -> xr.Dataset:
    """n_samples GRF sources a at the sensors and their solutions u on the stored (x, t) grid."""
    nx, nt, refine = params["nx"], params["nt"], params["refine"]
    x_fine = np.linspace(0.0, 1.0, params["fine_points"])
    a_fine = sample_grf(rng, n_samples, x_fine, params["grf"]["length_scale"], params["grf"]["variance"])
    x_solve = np.linspace(0.0, 1.0, (nx - 1) * refine + 1)
    t_solve = np.linspace(0.0, params["t_max"], (nt - 1) * refine + 1)
    source = interpolate(a_fine, x_fine, x_solve)[:, :, None]
    u = solve_diffusion_reaction(source, x_solve, t_solve, params["diffusivity"], params["reaction"], refine)
    sensors = np.linspace(0.0, 1.0, params["n_sensors"])
    return operator_dataset(
        interpolate(a_fine, x_fine, sensors), sensors, u, x_solve[::refine], t_solve[::refine],
        a_name="source a(x)", u_name="solution u(x, t)",
        equation="u_t = D u_xx + k u^2 + a(x) on [0, 1], u(0, t) = u(1, t) = 0, u(x, 0) = 0")
