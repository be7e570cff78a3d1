"""Family ``burgers1d``: u_t + u u_x = nu u_xx, periodic on [0, 1), u(x, 0) = u0 a random Fourier series.

u0 = sum_{k=1}^{n_modes} sqrt(2) 625 ((2 pi k)^2 + 25)^-2 (xi_k cos 2 pi k x + eta_k sin 2 pi k x), the
covariance 625 (-Delta + 25)^-2 of the FNO Burgers benchmark. The solver is Fourier
pseudo-spectral with the 2/3 rule on the nonlinear term and ETDRK4 in time (Kassam & Trefethen
2005): the stiff diffusion is integrated exactly, so the step is limited by accuracy only.
Outputs are the Fourier series evaluated at the stored points, not a grid interpolation.
"""

import numpy as np
import xarray as xr
from scipy.fft import irfft, rfft

from fwdsnn.pdes import ParameterError
from fwdsnn.pdes.dataset import operator_dataset

CONTOUR_POINTS = 32


def check(params: dict) -> None:
    if params["n_grid"] % 2:
        raise ParameterError("n_grid", f"must be even, got {params['n_grid']}")
    if not params["n_modes"] < params["n_grid"] / 3.0:
        raise ParameterError("n_modes", f"{params['n_modes']} must be below n_grid / 3 = "
                                        f"{params['n_grid'] / 3:g} so the initial condition is alias-free")
    try:
        steps_between(np.linspace(0.0, params["t_max"], params["nt"]), params["dt"])
    except ValueError as err:
        raise ParameterError("dt", str(err)) from None


def random_initial_spectrum(rng: np.random.Generator, n_samples: int, n_modes: int, n_grid: int) -> np.ndarray:
    """rfft coefficients (n_samples, n_grid // 2 + 1) of n_samples draws of u0 on an n_grid-point grid."""
    k = np.arange(1, n_modes + 1, dtype=np.float64)
    sigma = np.sqrt(2.0) * 625.0 * ((2.0 * np.pi * k) ** 2 + 25.0) ** -2
    xi, eta = rng.standard_normal((2, n_samples, n_modes))
    spectrum = np.zeros((n_samples, n_grid // 2 + 1), dtype=np.complex128)
    spectrum[:, 1:n_modes + 1] = 0.5 * n_grid * sigma * (xi - 1j * eta)
    return spectrum


def fourier_interpolate(u_grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The trigonometric interpolant of periodic samples on j/N, j < N (last axis), evaluated at x.

    The Nyquist mode enters as cos(pi N x), the real interpolant. x is reduced mod 1 and each
    distinct point evaluated once, so x = 1 is a bit-identical copy of x = 0.
    """
    u_grid = np.asarray(u_grid, dtype=np.float64)
    n_grid = u_grid.shape[-1]
    c = rfft(u_grid, axis=-1) / n_grid
    k = np.arange(c.shape[-1], dtype=np.float64)
    weight = np.full(k.shape, 2.0)
    weight[0] = 1.0
    if n_grid % 2 == 0:
        weight[-1] = 1.0
    points, copies = np.unique(np.mod(np.asarray(x, dtype=np.float64), 1.0), return_inverse=True)
    phase = 2.0 * np.pi * np.outer(k, points)
    return ((c.real * weight) @ np.cos(phase) - (c.imag * weight) @ np.sin(phase))[..., copies]


def etdrk4_coefficients(linear: np.ndarray, dt: float) -> tuple[np.ndarray, ...]:
    """E, E2, Q, f1, f2, f3 of ETDRK4 for the diagonal linear operator, by contour integrals.

    The phi-functions suffer cancellation for small |dt L|; averaging them over a circle of
    radius 1 around each dt L (upper half, real part, since L is real) avoids it.
    """
    hl = dt * linear[:, None]
    r = np.exp(1j * np.pi * (np.arange(1, CONTOUR_POINTS + 1) - 0.5) / CONTOUR_POINTS)
    lr = hl + r[None, :]
    q = dt * np.mean((np.exp(lr / 2.0) - 1.0) / lr, axis=1).real
    f1 = dt * np.mean((-4.0 - lr + np.exp(lr) * (4.0 - 3.0 * lr + lr**2)) / lr**3, axis=1).real
    f2 = dt * np.mean((2.0 + lr + np.exp(lr) * (lr - 2.0)) / lr**3, axis=1).real
    f3 = dt * np.mean((-4.0 - 3.0 * lr - lr**2 + np.exp(lr) * (4.0 - lr)) / lr**3, axis=1).real
    return np.exp(dt * linear), np.exp(dt * linear / 2.0), q, f1, f2, f3


def steps_between(t_out: np.ndarray, dt: float) -> np.ndarray:
    """Whole steps of size dt between consecutive output times; ValueError if dt does not divide them."""
    t_out = np.asarray(t_out, dtype=np.float64)
    if t_out.ndim != 1 or len(t_out) == 0 or t_out[0] != 0.0 or np.any(np.diff(t_out) <= 0.0):
        raise ValueError(f"t_out must increase from 0, got {t_out}")
    if not dt > 0.0:
        raise ValueError(f"dt must be > 0, got {dt}")
    gaps = np.diff(t_out)
    steps = np.rint(gaps / dt)
    if np.any(steps < 1) or np.any(np.abs(steps * dt - gaps) > 1e-9 * gaps):
        raise ValueError(f"dt = {dt} must divide every interval between output times "
                         f"(intervals {np.unique(gaps)}); choose dt = interval / integer")
    return steps.astype(int)


def solve_burgers(u0_grid: np.ndarray, nu: float, t_out: np.ndarray, dt: float) -> np.ndarray:
    """Snapshots (n_samples, len(t_out), N) of u on the grid j/N from u0_grid (n_samples, N), N even.

    The nonlinear term -(u^2/2)_x keeps only |k| < N/3: a product of two such fields aliases
    onto |k| >= N/3 only, so what is kept is alias-free. The mean (k = 0) is never touched.
    """
    u0_grid = np.atleast_2d(np.asarray(u0_grid, dtype=np.float64))
    n_grid = u0_grid.shape[-1]
    if n_grid % 2:
        raise ValueError(f"the grid must have an even number of points, got {n_grid}")
    steps = steps_between(t_out, dt)
    k = 2.0 * np.pi * np.arange(n_grid // 2 + 1, dtype=np.float64)
    derivative = np.where(np.arange(n_grid // 2 + 1) < n_grid / 3.0, -0.5j * k, 0.0)
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(-nu * k**2, dt)

    def nonlinear(v):
        return derivative * rfft(irfft(v, n_grid, axis=-1) ** 2, axis=-1)

    v = rfft(u0_grid, axis=-1)
    out = np.empty((len(u0_grid), len(steps) + 1, n_grid))
    out[:, 0] = u0_grid
    for i, n_steps in enumerate(steps, start=1):
        for _ in range(n_steps):
            nv = nonlinear(v)
            a = e2 * v + q * nv
            na = nonlinear(a)
            b = e2 * v + q * na
            nb = nonlinear(b)
            c = e2 * a + q * (2.0 * nb - nv)
            v = e * v + f1 * nv + 2.0 * f2 * (na + nb) + f3 * nonlinear(c)
        out[:, i] = irfft(v, n_grid, axis=-1)
    return out


def generate(params: dict, n_samples: int, rng: np.random.Generator) -> xr.Dataset:
    """a = u0 at n_sensors equispaced sensors of [0, 1] and u on the (nx, nt) grid of [0, 1] x [0, t_max]."""
    p = params
    check(p)
    u0_grid = irfft(random_initial_spectrum(rng, n_samples, p["n_modes"], p["n_grid"]), p["n_grid"], axis=-1)
    t = np.linspace(0.0, p["t_max"], p["nt"])
    snapshots = solve_burgers(u0_grid, p["nu"], t, p["dt"])

    sensors = np.linspace(0.0, 1.0, p["n_sensors"])
    x = np.linspace(0.0, 1.0, p["nx"])
    return operator_dataset(fourier_interpolate(u0_grid, sensors), sensors,
                            np.swapaxes(fourier_interpolate(snapshots, x), -1, -2), x, t,
                            a_name="initial condition u0 = u(x, 0)", u_name="velocity u(x, t)",
                            equation=f"u_t + u u_x = nu u_xx, nu = {p['nu']:g}, periodic on [0, 1), u(x, 0) = a")
