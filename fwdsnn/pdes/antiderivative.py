"""Family ``antiderivative``: the operator a -> u with u' = a on [0, 1], u(0) = 0, a ~ GRF.

The DeepONet paper's first benchmark. ``a`` is drawn on a fine grid so that the trapezoid
integral is accurate (error O(h^2)) before both fields are interpolated to the coarser sensor and
output points the networks see.
"""

import numpy as np
import xarray as xr
from scipy.integrate import cumulative_trapezoid

from fwdsnn.pdes.dataset import operator_dataset
from fwdsnn.pdes.grf import interpolate, sample_grf


def solve_antiderivative(a_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """u(x) = integral of a from x[0] to x by cumulative trapezoid, along the last axis."""
    return cumulative_trapezoid(np.asarray(a_values, dtype=np.float64), np.asarray(x, dtype=np.float64),
                                axis=-1, initial=0.0)


def generate(params: dict, n_samples: int, rng: np.random.Generator) -> xr.Dataset:
    """a at n_sensors equispaced sensors and u at n_points equispaced points of [0, 1]."""
    p, grf = params, params["grf"]
    x_fine = np.linspace(0.0, 1.0, p["fine_points"])
    a_fine = sample_grf(rng, n_samples, x_fine, grf["length_scale"], grf["variance"])
    u_fine = solve_antiderivative(a_fine, x_fine)

    sensors = np.linspace(0.0, 1.0, p["n_sensors"])
    x = np.linspace(0.0, 1.0, p["n_points"])
    return operator_dataset(interpolate(a_fine, x_fine, sensors), sensors, interpolate(u_fine, x_fine, x), x,
                            a_name="input function a = du/dx", u_name="antiderivative u, u(0) = 0",
                            equation="u' = a on [0, 1], u(0) = 0")
