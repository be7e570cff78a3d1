"""Every family's generate() follows the shared dataset layout and is seeded."""

import numpy as np
import pytest
import xarray as xr

from fwdsnn.config import target_params
from fwdsnn.registry import FAMILIES, family_module

GRID = {"nx": 21, "nt": 11, "n_sensors": 16}
SMALL = {
    "function": {"expression": "sin(pi*x)*exp(-y) + t**2", "domain": [[0, 1], [-1, 2], [0, 0.5]]},
    "antiderivative": {"n_sensors": 16, "n_points": 21, "fine_points": 200},
    "poisson1d": {"n_points": 21, "refine": 4},
    "heat1d": {**GRID, "fine_points": 129, "modes": 32},
    "diffusion_reaction1d": {**GRID, "fine_points": 64, "refine": 2},
    "advection1d": {**GRID, "fine_points": 64, "refine": 2},
    "burgers1d": {**GRID, "n_modes": 8, "n_grid": 64, "dt": 0.01},
}
N_SAMPLES = 5


def test_every_registered_family_is_covered():
    assert set(SMALL) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(SMALL))
def test_layout_attributes_and_seeding(family):
    module = family_module(family)
    params = target_params(family, **SMALL[family])
    ds = module.generate(params, N_SAMPLES, np.random.default_rng(3))

    np.testing.assert_array_equal(ds["sample"].values, np.arange(N_SAMPLES))
    for name, variable in ds.variables.items():
        assert {"long_name", "units"} <= set(variable.attrs), name
        if variable.dtype.kind == "f":
            assert variable.dtype == np.float64, name
            assert np.all(np.isfinite(variable.values)), name
    if family == "function":
        assert ds["u"].dims == ("sample",) and set(ds.coords) == {"sample", "x", "y", "t"}
    else:
        assert ds["a"].dims == ("sample", "sensor")
        assert ds["u"].dims[:2] == ("sample", "x")
        sensors, x = ds["sensor"].values, ds["x"].values
        np.testing.assert_allclose(np.diff(sensors), np.diff(sensors)[0])  # equispaced
        assert sensors[0] == x[0] and sensors[-1] == x[-1]  # sensors span the domain
        if "t" in ds["u"].dims:
            assert ds["u"].dims == ("sample", "x", "t")
            assert dict(ds.sizes) == {"sample": N_SAMPLES, "sensor": 16, "x": 21, "t": 11}
            np.testing.assert_allclose(ds["t"].values, np.linspace(0, params["t_max"], 11))

    xr.testing.assert_identical(ds, module.generate(params, N_SAMPLES, np.random.default_rng(3)))
    other = module.generate(params, N_SAMPLES, np.random.default_rng(4))
    assert not np.allclose(ds["u"].values, other["u"].values)
