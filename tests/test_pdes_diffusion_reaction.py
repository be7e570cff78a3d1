"""Crank-Nicolson diffusion-reaction solver: second order in x and t, and the generated dataset."""

import numpy as np
import pytest

from fwdsnn.pdes.diffusion_reaction1d import generate, solve_diffusion_reaction, solve_tridiagonal
from fwdsnn.pdes.grf import interpolate, sample_grf

PARAMS = {"diffusivity": 0.01, "reaction": 0.01, "nx": 21, "nt": 11, "t_max": 1.0, "n_sensors": 16,
          "fine_points": 64, "refine": 2, "grf": {"length_scale": 0.2, "variance": 1.0}}


def test_tridiagonal_matches_dense_solve():
    rng = np.random.default_rng(0)
    n, batch = 7, 3
    lower, upper = rng.uniform(-1, 0, (2, n, batch))
    diag = 3.0 + rng.uniform(0, 1, (n, batch))
    rhs = rng.standard_normal((n, batch))
    x = solve_tridiagonal(lower, diag, upper, rhs)
    for b in range(batch):
        a = np.diag(diag[:, b]) + np.diag(lower[1:, b], -1) + np.diag(upper[:-1, b], 1)
        np.testing.assert_allclose(a @ x[:, b], rhs[:, b], rtol=0, atol=1e-13)


def test_manufactured_solution_second_order():
    """u = (1 - e^{-3t}) sin(pi x) has zero initial and boundary values; the source makes it exact."""
    D, k = 0.05, 1.0

    def exact(x, t):
        return (1 - np.exp(-3 * t)) * np.sin(np.pi * x)

    def source(x, t):
        return 3 * np.exp(-3 * t) * np.sin(np.pi * x) + D * np.pi**2 * exact(x, t) - k * exact(x, t) ** 2

    errors = []
    for m in (10, 20, 40, 80):
        x, t = np.linspace(0, 1, m + 1), np.linspace(0, 1, m + 1)
        xx, tt = np.meshgrid(x, t, indexing="ij")
        u = solve_diffusion_reaction(source(xx, tt)[None], x, t, D, k)
        errors.append(np.abs(u[0] - exact(xx, tt)).max())
    errors = np.array(errors)
    orders = np.log2(errors[:-1] / errors[1:])  # measured 2.006, 2.002, 2.000
    assert np.all((orders > 1.8) & (orders < 2.2)), orders
    assert errors[-1] < 1e-4, errors  # measured 7.8e-5


@pytest.mark.parametrize("D, k", [(0.01, 0.01), (0.1, 1.0)])
def test_self_convergence_second_order(D, k):
    """Grid and step halved together (20..160 cells); successive solutions compared at the coarsest
    points with t >= 0.25.

    A GRF source is not zero at x = 0, 1 while u_t is, so the data disagree at the corners. The
    layer this leaves at early times is not yet asymptotic in the max norm for the larger D
    (orders 2.18, 2.00 over all t here; 2.9, 2.4 from 40 cells, the maximum sitting at the first
    stored step), so the early times are left out. Measured t >= 0.25: 2.00, 2.00 (defaults);
    2.01, 2.00 (D = 0.1, k = 1).
    """
    x_fine = np.linspace(0, 1, 512)
    a_fine = sample_grf(np.random.default_rng(0), 4, x_fine, 0.2, 1.0)
    solutions = []
    for level in range(4):
        stride = 2**level
        x, t = np.linspace(0, 1, 20 * stride + 1), np.linspace(0, 1, 20 * stride + 1)
        source = interpolate(a_fine, x_fine, x)[:, :, None]
        solutions.append(solve_diffusion_reaction(source, x, t, D, k, stride)[..., 5:])
    errors = np.array([np.abs(solutions[i] - solutions[i + 1]).max() for i in range(3)])
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all((orders > 1.8) & (orders < 2.2)), orders


def test_stride_must_divide_the_grid():
    x, t = np.linspace(0, 1, 11), np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="stride"):
        solve_diffusion_reaction(np.ones((1, 11, 1)), x, t, 0.01, 0.0, stride=3)


def test_generate_initial_and_boundary_values():
    u = generate(PARAMS, 5, np.random.default_rng(0))["u"].values
    assert np.all(u[:, :, 0] == 0)
    assert np.all(u[:, 0, :] == 0) and np.all(u[:, -1, :] == 0)
    assert np.abs(u).max() > 0.1  # the source does drive a solution


def test_generate_matches_a_direct_refined_solve():
    ds = generate(PARAMS, 3, np.random.default_rng(1))
    x_fine = np.linspace(0, 1, PARAMS["fine_points"])
    a_fine = sample_grf(np.random.default_rng(1), 3, x_fine, 0.2, 1.0)
    x, t = np.linspace(0, 1, 41), np.linspace(0, 1, 21)
    u = solve_diffusion_reaction(interpolate(a_fine, x_fine, x)[:, :, None], x, t, 0.01, 0.01)
    np.testing.assert_allclose(ds["u"].values, u[:, ::2, ::2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ds["a"].values, interpolate(a_fine, x_fine, ds["sensor"].values), rtol=0, atol=1e-15)
