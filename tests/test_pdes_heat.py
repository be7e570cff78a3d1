"""heat1d: the sine-series solution is exact for sine data, converges at the measured rates for
x(1-x), satisfies the PDE and the boundary data, and generate() honours the dataset conventions."""

import numpy as np
import pytest

from fwdsnn.config import ConfigError, target_params
from fwdsnn.pdes.heat1d import generate, heat_solution, sine_coefficients


def parabola_coefficients(modes):
    """Exact sine coefficients of x(1-x): 8 / (n pi)^3 for odd n, 0 for even n."""
    n = np.arange(1, modes + 1)
    return np.where(n % 2 == 1, 8.0 / (n * np.pi) ** 3, 0.0)


def observed_orders(errors):
    """log2 of successive error ratios for a sequence of halved grid sizes."""
    errors = np.asarray(errors)
    return np.log2(errors[:-1] / errors[1:])


def test_finite_sine_series_is_exact():
    x_fine = np.linspace(0.0, 1.0, 65)
    b = np.zeros(16)
    b[[0, 2, 6]] = [1.0, -0.5, 0.25]
    u0 = np.sin(np.pi * x_fine) - 0.5 * np.sin(3 * np.pi * x_fine) + 0.25 * np.sin(7 * np.pi * x_fine)
    assert np.max(np.abs(sine_coefficients(u0, 16) - b)) < 1e-14

    x = np.linspace(0.0, 1.0, 37)
    t = np.linspace(0.0, 0.7, 8)
    exact = sum(bn * np.exp(-n**2 * t[None, :]) * np.sin(n * np.pi * x[:, None]) for n, bn in [(1, 1.0), (3, -0.5), (7, 0.25)])
    assert np.max(np.abs(heat_solution(sine_coefficients(u0, 16), x, t) - exact)) < 1e-12


def test_parabola_coefficients_converge_at_fourth_order_in_the_fine_grid():
    # Aliasing of b_n ~ n^-3 onto a fixed mode gives an O(N^-4) error (measured ratios ~16).
    errors = [np.max(np.abs(sine_coefficients(xf * (1 - xf), 16) - parabola_coefficients(16)))
              for xf in (np.linspace(0.0, 1.0, n + 1) for n in (64, 128, 256, 512, 1024))]
    assert errors[-1] < 2e-12
    assert np.all((observed_orders(errors) > 3.8) & (observed_orders(errors) < 4.2))


def test_parabola_solution_converges_in_modes_and_grid():
    x = np.linspace(0.0, 1.0, 1001)
    # t = 0: the truncated series misses sum_{n > M} b_n ~ M^-2.
    x_fine = np.linspace(0.0, 1.0, 4097)
    truncation = [np.max(np.abs(heat_solution(sine_coefficients(x_fine * (1 - x_fine), m), x, [0.0])[:, 0] - x * (1 - x)))
                  for m in (16, 32, 64, 128)]
    assert truncation[-1] < 4e-6
    assert np.all((observed_orders(truncation) > 1.9) & (observed_orders(truncation) < 2.1))
    # t > 0: the tail has decayed, the N^-4 aliasing error is all that is left.
    reference = heat_solution(parabola_coefficients(2000), x, [0.01])
    errors = [np.max(np.abs(heat_solution(sine_coefficients(xf * (1 - xf), len(xf) - 2), x, [0.01]) - reference))
              for xf in (np.linspace(0.0, 1.0, n + 1) for n in (64, 128, 256, 512))]
    assert errors[-1] < 1e-10
    assert np.all((observed_orders(errors) > 3.8) & (observed_orders(errors) < 4.2))


def pde_residual(ds, t_min):
    """max |u_t - u_xx / pi^2| / max |u_t| by central differences at interior points with t >= t_min."""
    u, x, t = ds.u.values, ds.x.values, ds.t.values
    u_t = (u[:, 1:-1, 2:] - u[:, 1:-1, :-2]) / (t[2:] - t[:-2])
    u_xx = (u[:, 2:, 1:-1] - 2 * u[:, 1:-1, 1:-1] + u[:, :-2, 1:-1]) / (x[1] - x[0]) ** 2
    keep = t[1:-1] >= t_min
    return np.max(np.abs(u_t - u_xx / np.pi**2)[..., keep]) / np.max(np.abs(u_t[..., keep]))


def test_generated_solution_satisfies_pde_and_boundary_data():
    coarse, fine = (generate(target_params("heat1d", nx=n, nt=n), 4, np.random.default_rng(1)) for n in (101, 201))
    residuals = [pde_residual(coarse, 0.1), pde_residual(fine, 0.1)]
    assert residuals[1] < 1e-3  # measured 5.9e-4: the O(h^2) finite-difference error itself
    assert 1.9 < observed_orders(residuals)[0] < 2.1
    assert np.max(np.abs(fine.u.values[:, [0, -1], :])) < 1e-12 * np.max(np.abs(fine.u.values))


def test_input_is_the_initial_condition():
    params = target_params("heat1d", nx=41, nt=21, t_max=0.5, n_sensors=21, fine_points=257, modes=64)
    ds = generate(params, 5, np.random.default_rng(7))
    assert np.max(np.abs(ds.u.values)) > 0.1
    # Sensors coincide with every other x: there a is the t = 0 column of u.
    assert np.max(np.abs(ds.a.values - ds.u.values[:, ::2, 0])) < 1e-12


def test_too_many_modes_is_rejected():
    with pytest.raises(ValueError, match="modes"):
        sine_coefficients(np.zeros(17), 16)


def test_more_modes_than_the_fine_grid_resolves_is_a_config_error():
    with pytest.raises(ConfigError, match="targets.target.modes"):
        target_params("heat1d", fine_points=65, modes=64)
