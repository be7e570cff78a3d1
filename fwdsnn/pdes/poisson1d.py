"""Family ``poisson1d``: the operator a -> u with -u'' = a on [-1, 1], u(-1) = u(1) = 0, a ~ GRF.

Solved by second-order central differences on a grid ``refine`` times finer than the stored one,
so the stored u carries a discretisation error refine^2 times smaller than a solve on the stored
grid would. The stored points are every ``refine``-th fine point, so no interpolation is needed.
"""

import numpy as np
import xarray as xr
from scipy.linalg import solve_banded

from fwdsnn.pdes import ParameterError
from fwdsnn.pdes.dataset import operator_dataset
from fwdsnn.pdes.grf import sample_grf


def check(params: dict) -> None:
    if params["n_points"] < 3:
        raise ParameterError("n_points", f"{params['n_points']} leaves no interior point; need >= 3")


def solve_poisson_dirichlet(f_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """u with -u'' = f on the uniform grid x and u = 0 at both ends, along the last axis.

    One tridiagonal factorisation serves all samples: the right-hand sides are the columns of a
    single ``solve_banded`` call.
    """
    f_values = np.asarray(f_values, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 3 or f_values.shape[-1] != len(x):
        raise ValueError(f"need a 1-D grid of >= 3 points matching f's last axis, "
                         f"got x {x.shape}, f {f_values.shape}")
    h = (x[-1] - x[0]) / (len(x) - 1)
    if not np.allclose(np.diff(x), h, rtol=1e-10, atol=0.0):
        raise ValueError("the finite-difference solver needs a uniform grid")

    m = len(x) - 2
    bands = np.empty((3, m))
    bands[0], bands[1], bands[2] = -1.0, 2.0, -1.0  # (-u[i-1] + 2 u[i] - u[i+1]) / h^2 = f[i]
    rhs = h * h * f_values[..., 1:-1].reshape(-1, m).T
    u = np.zeros(f_values.shape)
    u[..., 1:-1] = solve_banded((1, 1), bands, rhs).T.reshape(f_values.shape[:-1] + (m,))
    return u


def generate(params: dict, n_samples: int, rng: np.random.Generator) -> xr.Dataset:
    """a and u at n_points equispaced points of [-1, 1] (the sensors are the output points)."""
    p, grf = params, params["grf"]
    refine = p["refine"]
    x_fine = np.linspace(-1.0, 1.0, (p["n_points"] - 1) * refine + 1)
    a_fine = sample_grf(rng, n_samples, x_fine, grf["length_scale"], grf["variance"])
    u_fine = solve_poisson_dirichlet(a_fine, x_fine)

    x, a, u = (np.ascontiguousarray(v[..., ::refine]) for v in (x_fine, a_fine, u_fine))
    return operator_dataset(a, x, u, x, a_name="source term a = -u''",
                            u_name="solution u, u(-1) = u(1) = 0",
                            equation="-u'' = a on [-1, 1], u(-1) = u(1) = 0")
