"""The time-independent families: solver accuracy (measured orders), GRF statistics, datasets."""

import numpy as np
import pytest

from fwdsnn.config import ConfigError, target_params
from fwdsnn.pdes import antiderivative, function, poisson1d
from fwdsnn.pdes.grf import rbf_kernel
from fwdsnn.registry import family_module


def observed_orders(errors: list[float]) -> np.ndarray:
    """Orders log2(e_h / e_{h/2}) of errors measured at successively halved grid spacings."""
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


def test_poisson_solver_is_second_order():
    # u = (1 - x^2) e^x vanishes at +-1; -u'' = (1 + 4x + x^2) e^x. Grids finer than the stored
    # default (51 points, solved on 401), each halving h.
    errors = []
    for n in (401, 801, 1601, 3201):
        x = np.linspace(-1.0, 1.0, n)
        u = poisson1d.solve_poisson_dirichlet((1 + 4 * x + x**2) * np.exp(x), x)
        errors.append(np.max(np.abs(u - (1 - x**2) * np.exp(x))))
    assert errors[0] < 2e-5
    orders = observed_orders(errors)
    assert np.all((orders > 1.9) & (orders < 2.1)), (errors, orders)


def test_poisson_solver_is_vectorised_over_samples():
    x = np.linspace(-1.0, 1.0, 33)
    f = np.stack([np.cos(x), x**2, np.ones_like(x)]).reshape(3, 1, 33)
    u = poisson1d.solve_poisson_dirichlet(f, x)
    assert u.shape == (3, 1, 33)
    for k in range(3):
        np.testing.assert_array_equal(u[k, 0], poisson1d.solve_poisson_dirichlet(f[k, 0], x))
    # -u'' = 1 with zero ends is the parabola (1 - x^2)/2, which the stencil reproduces exactly.
    np.testing.assert_allclose(u[2, 0], (1 - x**2) / 2, atol=1e-13)


def test_poisson_solver_rejects_non_uniform_grid():
    x = np.linspace(-1.0, 1.0, 11) ** 3
    with pytest.raises(ValueError, match="uniform"):
        poisson1d.solve_poisson_dirichlet(np.ones_like(x), x)


def test_antiderivative_quadrature_is_second_order():
    # a = cos(2 pi x) + x, u = sin(2 pi x)/(2 pi) + x^2/2.
    errors = []
    for n in (251, 501, 1001, 2001):
        x = np.linspace(0.0, 1.0, n)
        u = antiderivative.solve_antiderivative(np.cos(2 * np.pi * x) + x, x)
        assert u[0] == 0.0
        errors.append(np.max(np.abs(u - (np.sin(2 * np.pi * x) / (2 * np.pi) + x**2 / 2))))
    assert errors[0] < 1e-4
    orders = observed_orders(errors)
    assert np.all((orders > 1.9) & (orders < 2.1)), (errors, orders)


@pytest.mark.parametrize("family, params, length_scale, variance", [
    ("antiderivative", {"n_sensors": 10, "n_points": 2, "fine_points": 100}, 0.2, 1.0),
    ("poisson1d", {"n_points": 10, "grf": {"length_scale": 0.5, "variance": 2.0}}, 0.5, 2.0),
])
def test_grf_input_has_rbf_covariance(family, params, length_scale, variance):
    # Sample covariance entries have standard deviation <= sqrt(2) * variance / sqrt(n) and the
    # sample mean sqrt(variance / n); 5 standard deviations bound every entry. The sensors are not
    # fine-grid points, so the spline interpolation is part of what is checked.
    n = 20000
    ds = family_module(family).generate(target_params(family, **params), n, np.random.default_rng(0))
    a = ds["a"].values
    tolerance = 5 * np.sqrt(2) * variance / np.sqrt(n)
    assert np.max(np.abs(a.mean(axis=0))) < 5 * np.sqrt(variance / n)
    covariance = np.cov(a, rowvar=False)
    expected = rbf_kernel(ds["sensor"].values, ds["sensor"].values, length_scale, variance)
    assert np.max(np.abs(covariance - expected)) < tolerance


def test_function_values_are_the_expression_at_the_stored_points():
    params = {"expression": "sin(pi*x)*exp(-y) + t**2", "domain": [[0, 1], [-1, 2], [0, 0.5]]}
    ds = function.generate(params, 200, np.random.default_rng(1))
    assert ds["u"].dims == ("sample",)
    x, y, t = (ds[name].values for name in "xyt")
    for values, (lo, hi) in zip((x, y, t), params["domain"]):
        assert lo <= values.min() and values.max() <= hi
        assert values.max() - values.min() > 0.9 * (hi - lo)  # spread over the interval
    np.testing.assert_allclose(ds["u"].values, np.sin(np.pi * x) * np.exp(-y) + t**2, rtol=1e-15)


def test_function_with_one_variable_has_only_x():
    ds = function.generate(target_params("function", expression="x**2", domain=[[-2, 2]]), 50,
                           np.random.default_rng(0))
    assert set(ds.coords) == {"sample", "x"}
    np.testing.assert_array_equal(ds["u"].values, ds["x"].values ** 2)


@pytest.mark.parametrize("params, error, fragment", [
    ({"expression": "x + z", "domain": [[0, 1]]}, ValueError, "unknown variable 'z'"),
    ({"expression": "log(x)", "domain": [[-1, 1]]}, ValueError, "not finite"),
    ({"expression": "x", "domain": [[1, 0]]}, ValueError, "low must be < high"),
])
def test_function_rejects_bad_params(params, error, fragment):
    with pytest.raises(error, match=fragment):
        function.generate(params, 10, np.random.default_rng(0))


def test_function_domain_has_at_most_three_variables():
    with pytest.raises(ConfigError, match="targets.target.domain"):
        target_params("function", expression="x", domain=[[0, 1]] * 4)


def test_antiderivative_dataset_is_consistent():
    # With sensors, outputs and the fine grid identical, interpolation is the identity and u must
    # be the trapezoid integral of the stored a.
    params = {"n_sensors": 50, "n_points": 50, "fine_points": 50}
    ds = antiderivative.generate(target_params("antiderivative", **params), 4, np.random.default_rng(2))
    assert ds["a"].dims == ("sample", "sensor") and ds["u"].dims == ("sample", "x")
    np.testing.assert_allclose(ds["sensor"].values, np.linspace(0, 1, 50))
    a, u = ds["a"].values, ds["u"].values
    np.testing.assert_allclose(u, antiderivative.solve_antiderivative(a, ds["x"].values), atol=1e-13)
    # With the defaults the stored u is an antiderivative of the stored a: u(0) = 0, u' = a.
    ds = antiderivative.generate(target_params("antiderivative"), 4, np.random.default_rng(2))
    assert ds.sizes == {"sample": 4, "sensor": 100, "x": 100}
    u, a, x = ds["u"].values, ds["a"].values, ds["x"].values
    np.testing.assert_allclose(u[:, 0], 0.0, atol=1e-14)
    slope = np.gradient(u, x, axis=1, edge_order=2)
    assert np.max(np.abs(slope - a)) < 5e-3 * np.max(np.abs(a))


def test_poisson_dataset_satisfies_the_discrete_equation():
    ds = poisson1d.generate(target_params("poisson1d", n_points=21, refine=1), 6, np.random.default_rng(5))
    assert ds["a"].dims == ("sample", "sensor") and ds["u"].dims == ("sample", "x")
    u, a, x = ds["u"].values, ds["a"].values, ds["x"].values
    np.testing.assert_allclose(x, np.linspace(-1, 1, 21), atol=1e-15)
    np.testing.assert_array_equal(ds["sensor"].values, x)
    assert np.all(u[:, 0] == 0.0) and np.all(u[:, -1] == 0.0)
    h = x[1] - x[0]
    residual = (-u[:, :-2] + 2 * u[:, 1:-1] - u[:, 2:]) / h**2 - a[:, 1:-1]
    assert np.max(np.abs(residual)) < 1e-10 * np.max(np.abs(a))


def test_poisson_refined_solution_is_more_accurate_than_the_stored_grid():
    # The defaults solve on a grid 8 times finer: the stored u satisfies the coarse stencil only
    # up to its O(h^2) truncation error, yet has zero boundary values exactly.
    ds = poisson1d.generate(target_params("poisson1d"), 6, np.random.default_rng(5))
    assert ds.sizes == {"sample": 6, "sensor": 51, "x": 51}
    u, a, x = ds["u"].values, ds["a"].values, ds["x"].values
    assert np.all(u[:, [0, -1]] == 0.0)
    coarse = poisson1d.solve_poisson_dirichlet(a, x)
    difference = np.max(np.abs(coarse - u))
    assert 0 < difference < 1e-3 * np.max(np.abs(u))
