"""Family ``advection1d``: u_t + c(x) u_x = 0 on [0, 1] x [0, t_max], c = a - min a + 1, a ~ GRF.

u(x, 0) = sin(pi x) and the inflow u(0, t) = sin(pi t / 2). As c > 0 depends on x only, u is
constant along characteristics: with the travel time tau(x) = int_0^x ds / c(s),

    tau(x) >= t:  u(x, t) = sin(pi x0),  tau(x0) = tau(x) - t   (started at t = 0 from x0),
    tau(x) <  t:  u(x, t) = sin(pi (t - tau(x)) / 2)            (entered at time t - tau(x)).

The two data disagree at the corner, so u has a kink along tau(x) = t; the construction above is
exact there, so the only error is in tau. tau is the C1 piecewise-cubic Hermite interpolant of
its node values (two-point Gauss-Legendre on every interval, cumulated) and its exact slopes 1/c
at the nodes; x0 solves that interpolant = tau(x) - t to rounding (bracketing interval, then
Newton). Quadrature and interpolation are both fourth order in the node spacing. The nodes
refine every interval of the GRF fine grid into ``refine`` equal parts, so each quadrature
interval lies inside one piece of the cubic spline that defines a, where 1/c is smooth.
"""

from collections.abc import Callable

import numpy as np
import xarray as xr

from fwdsnn.pdes.dataset import operator_dataset
from fwdsnn.pdes.grf import interpolate, sample_grf

GAUSS_POINTS = 0.5 + np.array([-0.5, 0.5]) / np.sqrt(3.0)  # two-point Gauss-Legendre on [0, 1]
NEWTON_STEPS = 3  # from the secant guess (off by ~1e-3 of an interval) two reach rounding on GRF speeds


def initial_value(x: np.ndarray) -> np.ndarray:
    """The family's u(x, 0)."""
    return np.sin(np.pi * x)


def inflow_value(t: np.ndarray) -> np.ndarray:
    """The family's u(0, t)."""
    return np.sin(0.5 * np.pi * t)


def travel_time(speed: Callable, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tau and the slowness 1/c at the nodes, each (sample, len(nodes)); tau(nodes[0]) = 0.

    speed(x) gives c at the points x, shape (sample, len(x)). Each interval's integral of 1/c is
    two-point Gauss-Legendre (local error h^5 (1/c)'''' / 4320), so tau is fourth order.
    """
    nodes = np.asarray(nodes, float)
    h = np.diff(nodes)
    n = len(nodes)
    gauss = nodes[:-1, None] + h[:, None] * GAUSS_POINTS  # (interval, 2)
    c = np.asarray(speed(np.concatenate([nodes, gauss.ravel()])), float)
    if np.any(c <= 0):
        raise ValueError("the characteristic solution needs c > 0 (inflow at x = 0)")
    slowness = 1.0 / c
    pieces = 0.5 * h * slowness[:, n:].reshape(len(c), n - 1, 2).sum(axis=-1)
    tau = np.zeros((len(c), n))
    np.cumsum(pieces, axis=1, out=tau[:, 1:])
    return tau, slowness[:, :n]


def _cubic(tau: np.ndarray, slope: np.ndarray, k: np.ndarray, h: np.ndarray) -> tuple:
    """Coefficients of the Hermite cubic on interval k in theta in [0, 1]: y0 + theta (d0 + theta (p + theta q))."""
    y0 = np.take_along_axis(tau, k, axis=1)
    rise = np.take_along_axis(tau, k + 1, axis=1) - y0
    d0 = h * np.take_along_axis(slope, k, axis=1)
    d1 = h * np.take_along_axis(slope, k + 1, axis=1)
    return y0, d0, 3.0 * rise - 2.0 * d0 - d1, d0 + d1 - 2.0 * rise, rise


def characteristic_solution(tau: np.ndarray, slowness: np.ndarray, nodes: np.ndarray, x: np.ndarray,
                            t: np.ndarray, initial: Callable = initial_value,
                            inflow: Callable = inflow_value) -> np.ndarray:
    """u(sample, len(x), len(t)) from travel_time()'s tau and slowness at the nodes (see module doc).

    tau between nodes is the Hermite cubic through the node values with slopes 1/c; a ValueError
    says it is not monotone (Fritsch-Carlson: both end slopes within 3 times the secant), i.e.
    the nodes are far too coarse for c. initial(x) and inflow(t) default to the family's.
    """
    nodes, x, t = (np.asarray(v, float) for v in (nodes, x, t))
    n_samples, n = tau.shape
    h_nodes = np.diff(nodes)
    secant = np.diff(tau, axis=1) / h_nodes
    if np.any(slowness[:, :-1] > 3.0 * secant) or np.any(slowness[:, 1:] > 3.0 * secant):
        raise ValueError("the travel-time interpolant is not monotone: refine the quadrature nodes")

    kx = np.broadcast_to(np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, n - 2), (n_samples, len(x)))
    theta = (x - nodes[kx[0]]) / h_nodes[kx[0]]
    y0, d0, p, q, _ = _cubic(tau, slowness, kx, h_nodes[kx[0]])
    tau_x = y0 + theta * (d0 + theta * (p + theta * q))  # (sample, x); exactly 0 at x = 0

    # Rows of tau shifted apart, so one searchsorted brackets every sample's targets at once.
    # The shift rounds at ~1e-13; the bracket is then made exact against the unshifted tau.
    shift = (np.abs(tau).max() + 1.0) * np.arange(n_samples)[:, None]
    flat = (tau + shift).ravel()
    first = n * np.arange(n_samples)[:, None]
    u = np.empty((n_samples, len(x), len(t)))
    for i, time in enumerate(t):
        target = tau_x - time  # tau(x0), or minus the entry time where negative
        ahead = target >= 0.0
        level = np.maximum(target, 0.0)
        k = np.searchsorted(flat, (level + shift).ravel(), side="right").reshape(level.shape) - 1 - first
        k = np.clip(k, 0, n - 2)
        k -= (k > 0) & (np.take_along_axis(tau, k, axis=1) > level)
        k += (k < n - 2) & (np.take_along_axis(tau, k + 1, axis=1) <= level)
        h = h_nodes[k]
        y0, d0, p, q, rise = _cubic(tau, slowness, k, h)
        theta = (level - y0) / rise
        for _ in range(NEWTON_STEPS):
            value = y0 + theta * (d0 + theta * (p + theta * q)) - level
            theta -= value / (d0 + theta * (2.0 * p + theta * 3.0 * q))
        u[:, :, i] = np.where(ahead, initial(nodes[k] + theta * h), inflow(-target))
    return u


def generate(params: dict, n_samples: int, rng: np.random.Generator) -> xr.Dataset:
    """n_samples GRF inputs a at the sensors and the solutions u on the stored (x, t) grid.

    a is drawn on fine_points points and is their cubic spline (grf.interpolate) in between; c is
    shifted by the minimum of the drawn values. The travel-time nodes split each fine-grid
    interval into refine equal parts.
    """
    x_fine = np.linspace(0.0, 1.0, params["fine_points"])
    a_fine = sample_grf(rng, n_samples, x_fine, params["grf"]["length_scale"], params["grf"]["variance"])
    c_fine = a_fine - a_fine.min(axis=1, keepdims=True) + 1.0
    nodes = np.linspace(0.0, 1.0, (params["fine_points"] - 1) * params["refine"] + 1)
    tau, slowness = travel_time(lambda s: interpolate(c_fine, x_fine, s), nodes)
    x = np.linspace(0.0, 1.0, params["nx"])
    t = np.linspace(0.0, params["t_max"], params["nt"])
    sensors = np.linspace(0.0, 1.0, params["n_sensors"])
    return operator_dataset(
        interpolate(a_fine, x_fine, sensors), sensors, characteristic_solution(tau, slowness, nodes, x, t), x, t,
        a_name="GRF a (c = a - min a + 1)", u_name="solution u(x, t)",
        equation="u_t + c(x) u_x = 0 on [0, 1], c = a - min a + 1, u(x, 0) = sin(pi x), u(0, t) = sin(pi t / 2)")
