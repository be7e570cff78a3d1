"""The layout every family's dataset shares, written once.

Operator targets: ``a(sample, sensor)`` (the input function at its sensors) and
``u(sample, x[, t])``; function targets: ``u(sample)`` with the input coordinates along
``sample``. All positions are dimensionless ("1").
"""

import numpy as np
import xarray as xr

DIMENSIONLESS = "1"


def coordinate(values: np.ndarray, long_name: str) -> tuple:
    return (np.asarray(values), {"long_name": long_name, "units": DIMENSIONLESS})


def sample_coordinate(n_samples: int) -> tuple:
    return ("sample", np.arange(n_samples), {"long_name": "sample index", "units": DIMENSIONLESS})


def operator_dataset(a: np.ndarray, sensors: np.ndarray, u: np.ndarray, x: np.ndarray,
                     t: np.ndarray | None = None, *, a_name: str, u_name: str,
                     equation: str) -> xr.Dataset:
    """Input a at the sensors and solution u on the (x[, t]) grid, with attrs on everything."""
    grid = ("x",) if t is None else ("x", "t")
    coords = {"sample": sample_coordinate(len(a)),
              "sensor": ("sensor", *coordinate(sensors, "sensor position")),
              "x": ("x", *coordinate(x, "position x"))}
    if t is not None:
        coords["t"] = ("t", *coordinate(t, "time t"))
    return xr.Dataset(
        {"a": (("sample", "sensor"), a, {"long_name": a_name, "units": DIMENSIONLESS}),
         "u": (("sample", *grid), u, {"long_name": u_name, "units": DIMENSIONLESS})},
        coords=coords, attrs={"equation": equation})
