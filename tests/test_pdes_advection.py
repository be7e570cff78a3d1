"""Characteristic advection solver: exact cases, fourth-order travel time, an independent ODE cross-check, the dataset."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.interpolate import CubicSpline

from fwdsnn.config import target_params
from fwdsnn.pdes.advection1d import characteristic_solution, generate, travel_time
from fwdsnn.pdes.grf import interpolate, sample_grf


def params(**overrides):
    return target_params("advection1d", **overrides)


SMALL = {"nx": 21, "nt": 11, "n_sensors": 16, "fine_points": 64, "refine": 4}


def orders(errors):
    errors = np.asarray(errors)
    return np.log2(errors[:-1] / errors[1:])


def linear_speed_solution(x, t):
    """c = 1 + x: tau = ln(1 + x), the characteristic from x0 is 1 + x = (1 + x0) e^t."""
    xx, tt = np.meshgrid(x, t, indexing="ij")
    x0 = (1 + xx) * np.exp(-tt) - 1
    return np.where(x0 >= 0, np.sin(np.pi * x0), np.sin(0.5 * np.pi * (tt - np.log1p(xx))))


def test_constant_speeds_exact_per_sample():
    """Several constant speeds in one call (each sample its own bracket search): the Gauss rule and
    the Hermite cubic are exact for constant 1/c, so only rounding is left, kink included."""
    speeds = np.array([1.0, 1.5, 2.5, 6.0])
    nodes = np.linspace(0, 1, 11)
    tau, slowness = travel_time(lambda x: np.outer(speeds, np.ones_like(x)), nodes)
    x, t = np.linspace(0, 1, 41), np.linspace(0, 1.3, 27)
    u = characteristic_solution(tau, slowness, nodes, x, t)
    xx, tt = np.meshgrid(x, t, indexing="ij")
    for c, u_c in zip(speeds, u):
        exact = np.where(xx >= c * tt, np.sin(np.pi * (xx - c * tt)), np.sin(0.5 * np.pi * (tt - xx / c)))
        assert np.abs(u_c - exact).max() < 1e-14, c  # measured <= 7e-16


@pytest.mark.parametrize("speed, tau_exact", [
    (lambda x: 1 + x, np.log1p),
    (lambda x: 1 / (1 + 0.5 * np.sin(2 * np.pi * x)), lambda x: x + (1 - np.cos(2 * np.pi * x)) / (4 * np.pi)),
])
def test_travel_time_fourth_order(speed, tau_exact):
    """Max error of tau at the nodes over 10..160 intervals: orders 3.99-4.01 for both speeds."""
    errors = []
    for m in (10, 20, 40, 80, 160):
        nodes = np.linspace(0, 1, m + 1)
        tau, slowness = travel_time(lambda x: speed(x)[None], nodes)
        np.testing.assert_allclose(slowness[0], 1 / speed(nodes), rtol=1e-15)
        errors.append(np.abs(tau[0] - tau_exact(nodes)).max())
    assert np.all((orders(errors) > 3.9) & (orders(errors) < 4.1)), orders(errors)
    assert errors[-1] < 2e-10, errors  # 2.0e-12 (1 + x), 8.8e-11 (sine)


def test_linear_speed_solution_fourth_order():
    """c = 1 + x against the closed form on a 101 x 101 grid (off the nodes, both sides of the kink).

    Measured max errors 4.5e-6 .. 8.0e-11 over 10..160 intervals, orders 3.89-3.99."""
    x, t = np.linspace(0, 1, 101), np.linspace(0, 1, 101)
    exact = linear_speed_solution(x, t)
    errors = []
    for m in (10, 20, 40, 80, 160):
        nodes = np.linspace(0, 1, m + 1)
        tau, slowness = travel_time(lambda s: (1 + s)[None], nodes)
        errors.append(np.abs(characteristic_solution(tau, slowness, nodes, x, t)[0] - exact).max())
    assert np.all((orders(errors) > 3.8) & (orders(errors) < 4.2)), orders(errors)
    assert errors[-1] < 2e-10, errors


def test_generate_matches_independent_ode_solution():
    """generate() against adaptive Runge-Kutta (DOP853, rtol 1e-13) on the same speed, the cubic
    spline of c through the fine grid: tau(x) = int 1/c for the inflow side, and a backtrace of
    dx/ds = -c(x) over s in [0, t] for the points whose characteristic starts at t = 0. The
    default fine_points and refine, so this bounds the error of the stored data. The difference
    is the Runge-Kutta reference's own (the spline's third derivative jumps at every fine-grid
    knot): it is not monotone in rtol and differs between machines, so the bound leaves it room;
    it is still far below float32 storage precision."""
    p = params(nx=21, nt=11, n_sensors=16)
    ds = generate(p, 2, np.random.default_rng(3))
    x_fine = np.linspace(0, 1, p["fine_points"])
    a_fine = sample_grf(np.random.default_rng(3), 2, x_fine, 0.2, 1.0)
    np.testing.assert_allclose(ds["a"].values, interpolate(a_fine, x_fine, ds["sensor"].values), rtol=0, atol=1e-15)
    x, t = ds["x"].values, ds["t"].values
    worst = 0.0
    for a, u in zip(a_fine, ds["u"].values):
        c = CubicSpline(x_fine, a - a.min() + 1)
        tau = solve_ivp(lambda s, y: 1 / c(s), (0, 1), [0.0], method="DOP853", t_eval=x,
                        rtol=1e-13, atol=1e-15).y[0]
        reference = np.sin(0.5 * np.pi * (t[None] - tau[:, None]))
        for n, time in enumerate(t[1:], start=1):
            ahead = tau >= time
            back = solve_ivp(lambda s, y: -c(y), (0, time), x[ahead], method="DOP853", rtol=1e-13, atol=1e-15)
            reference[ahead, n] = np.sin(np.pi * back.y[:, -1])
        reference[:, 0] = np.sin(np.pi * x)
        assert (tau < t[-1]).any() and (tau >= t[1]).any()  # both branches are checked
        worst = max(worst, np.abs(u - reference).max())
    assert worst < 3e-9, worst


def test_refine_converges_fourth_order():
    """refine splits each fine-grid interval into refine quadrature intervals. With only 64 fine
    points (default 512) and against refine 16, refine 1, 2, 4 differ by 3.9e-6, 2.5e-7, 1.7e-8
    (orders 3.98, 3.85; a max over grid points, so the order wobbles by ~0.2)."""
    coarse = {**SMALL, "nx": 201, "nt": 21, "refine": 1}
    reference = generate(params(**{**coarse, "refine": 16}), 8, np.random.default_rng(6))["u"].values
    errors = [np.abs(generate(params(**{**coarse, "refine": r}), 8, np.random.default_rng(6))["u"].values
                     - reference).max() for r in (1, 2, 4)]
    assert np.all((orders(errors) > 3.6) & (orders(errors) < 4.4)), orders(errors)
    assert errors[-1] < 5e-8, errors


def test_rejects_non_positive_speed():
    with pytest.raises(ValueError, match="c > 0"):
        travel_time(lambda x: (1 - 2 * x)[None], np.linspace(0, 1, 5))


def test_rejects_nodes_too_coarse_for_the_speed():
    """c = 1 at both nodes but 1 + 1000 (x (1 - x))^2 between: the secant of tau is far below the end slopes."""
    nodes = np.linspace(0, 1, 2)
    tau, slowness = travel_time(lambda x: (1 + 1000 * (x * (1 - x)) ** 2)[None], nodes)
    with pytest.raises(ValueError, match="not monotone"):
        characteristic_solution(tau, slowness, nodes, nodes, nodes)


def test_generate_initial_and_inflow_values():
    ds = generate(params(**SMALL, t_max=2.0), 5, np.random.default_rng(0))
    u, x, t = ds["u"].values, ds["x"].values, ds["t"].values
    np.testing.assert_allclose(u[:, :, 0], np.broadcast_to(np.sin(np.pi * x), (5, 21)), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(u[:, 0, :], np.broadcast_to(np.sin(0.5 * np.pi * t), (5, 11)))
    assert np.abs(u).max() <= 1 + 1e-15
