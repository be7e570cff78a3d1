"""burgers1d: ETDRK4 pseudo-spectral solution against a refined run and the Cole-Hopf solution,
conservation of the mean, fourth order in time, and the dataset conventions of generate()."""

import numpy as np
import pytest
from scipy.fft import irfft

from fwdsnn.config import ConfigError, target_params
from fwdsnn.pdes.burgers1d import fourier_interpolate, generate, random_initial_spectrum, solve_burgers


def random_initial_grid(seed, n_samples=4, n_grid=256):
    """Initial conditions of the default distribution on j / n_grid."""
    spectrum = random_initial_spectrum(np.random.default_rng(seed), n_samples, 32, n_grid)
    return irfft(spectrum, n_grid, axis=-1)


def cole_hopf(x, t, nu):
    """u = -2 nu phi_x / phi for phi = 2 + cos(2 pi x) exp(-4 pi^2 nu t), an exact periodic solution."""
    decay = np.exp(-4.0 * np.pi**2 * nu * t)
    return 4.0 * np.pi * nu * np.sin(2.0 * np.pi * x) * decay / (2.0 + np.cos(2.0 * np.pi * x) * decay)


def test_fourier_interpolation_is_exact_for_trigonometric_polynomials():
    x_grid = np.arange(16) / 16
    samples = np.random.default_rng(0).standard_normal((3, 16))  # includes Nyquist content
    assert np.max(np.abs(fourier_interpolate(samples, x_grid) - samples)) < 1e-14
    x = np.random.default_rng(1).uniform(0.0, 1.0, 50)

    def poly(x):
        return 0.3 + np.cos(2 * np.pi * 3 * x) - 0.7 * np.sin(2 * np.pi * 7 * x) + 0.2 * np.cos(2 * np.pi * 8 * x)

    assert np.max(np.abs(fourier_interpolate(poly(x_grid), x) - poly(x))) < 1e-14


def test_nonlinear_term_is_dealiased():
    # u0 = cos(2 pi 20 x) on 64 points: u^2 holds mode 40, which aliases onto mode 24 >= 64/3.
    # With the 2/3 rule nothing may appear there; without it, it does at O(dt).
    x = np.arange(64) / 64
    u = solve_burgers(np.cos(2 * np.pi * 20 * x)[None], 0.001, [0.0, 0.01], 0.01)[0, -1]
    spectrum = np.abs(np.fft.rfft(u)) / 32
    assert spectrum[20] > 0.5
    assert np.max(spectrum[22:]) < 1e-15


def test_matches_cole_hopf_solution():
    nu, x, t = 0.05, np.arange(64) / 64, np.linspace(0.0, 1.0, 5)
    u = solve_burgers(cole_hopf(x, 0.0, nu)[None], nu, t, 0.001)[0]
    assert np.max(np.abs(u - cole_hopf(x[None, :], t[:, None], nu))) < 1e-11  # measured 2.7e-13


def test_matches_reference_with_4x_grid_and_quarter_step():
    u0 = random_initial_grid(seed=3)
    x_ref = np.arange(1024) / 1024
    u0_ref = fourier_interpolate(u0, x_ref)
    assert np.max(np.abs(u0_ref[:, ::4] - u0)) < 1e-14
    t = np.linspace(0.0, 1.0, 11)
    u = solve_burgers(u0, 0.01, t, 0.001)
    reference = solve_burgers(u0_ref, 0.01, t, 0.00025)
    x_out = np.linspace(0.0, 1.0, 101)
    error = np.max(np.abs(fourier_interpolate(u, x_out) - fourier_interpolate(reference, x_out)))
    assert error < 1e-9 * np.max(np.abs(reference))  # measured 4e-11 relative


def test_fourth_order_in_time():
    # 256 points resolve the solution to ~1e-11 (previous test), below the smallest difference here.
    u0 = random_initial_grid(seed=5)
    finals = [solve_burgers(u0, 0.01, [0.0, 0.5], dt)[:, -1] for dt in (0.02, 0.01, 0.005, 0.0025)]
    differences = [np.max(np.abs(a - b)) for a, b in zip(finals[:-1], finals[1:])]
    orders = np.log2(np.array(differences[:-1]) / differences[1:])
    assert differences[-1] > 1e-10
    assert np.all((orders > 3.5) & (orders < 4.5))  # measured 3.9, 4.0


def test_mean_is_conserved():
    u0 = random_initial_grid(seed=11) + 0.3
    u = solve_burgers(u0, 0.01, np.linspace(0.0, 1.0, 11), 0.001)
    assert np.max(np.abs(u.mean(axis=-1) - u0.mean(axis=-1)[:, None])) < 1e-12

    ds = generate(target_params("burgers1d", nt=11), 4, np.random.default_rng(11))
    mean = np.trapezoid(ds.u.values, ds.x.values, axis=1)  # exact for the stored trigonometric polynomial
    assert np.max(np.abs(mean - mean[:, :1])) < 1e-12


def test_input_is_the_initial_condition_and_output_is_periodic():
    params = target_params("burgers1d", nx=51, nt=11, t_max=0.5, n_sensors=26, n_grid=128, dt=0.005)
    ds = generate(params, 5, np.random.default_rng(7))
    assert np.max(np.abs(ds.u.values)) > 0.05
    # Sensors coincide with every other x: there a is the t = 0 column of u; x = 1 copies x = 0.
    assert np.max(np.abs(ds.a.values - ds.u.values[:, ::2, 0])) < 1e-14
    assert np.array_equal(ds.u.values[:, 0], ds.u.values[:, -1])


def test_step_must_divide_output_interval():
    with pytest.raises(ValueError, match="must divide"):
        solve_burgers(np.zeros((1, 16)), 0.01, np.linspace(0.0, 1.0, 11), 0.003)
    with pytest.raises(ConfigError, match="targets.target.n_modes"):
        target_params("burgers1d", n_modes=32, n_grid=64)
    with pytest.raises(ConfigError, match="targets.target.n_grid"):
        target_params("burgers1d", n_grid=65)
    with pytest.raises(ConfigError, match="targets.target.dt"):
        target_params("burgers1d", dt=0.003)
