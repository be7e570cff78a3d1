"""Family ``function``: a user-written formula sampled at random points of a box.

The simplest regression target: no solver, just ``u = f(x[, y[, t]])`` from the config string,
evaluated by the restricted evaluator at points drawn uniformly in ``domain``.
"""

import numpy as np
import xarray as xr

from fwdsnn.expression import ExpressionError, compile_expression
from fwdsnn.pdes import ParameterError
from fwdsnn.pdes.dataset import coordinate, sample_coordinate

VARIABLES = ("x", "y", "t")
VARIABLE_NAMES = {"x": "coordinate x", "y": "coordinate y", "t": "time t"}


def check(params: dict) -> None:
    """Non-empty intervals and an expression in the domain's variables only."""
    for index, (low, high) in enumerate(params["domain"]):
        if not low < high:
            raise ParameterError(f"domain.{index}", f"interval [{low}, {high}] is empty (low must be < high)")
    try:
        compile_expression(params["expression"], VARIABLES[: len(params["domain"])])
    except ExpressionError as err:
        raise ParameterError("expression", str(err)) from None


def generate(params: dict, n_samples: int, rng: np.random.Generator) -> xr.Dataset:
    """u at n_samples uniform points of the box ``domain`` (one [lo, hi] per variable x, y, t)."""
    check(params)
    domain = np.asarray(params["domain"], dtype=np.float64)
    names = VARIABLES[:len(domain)]
    expression = params["expression"]
    f = compile_expression(expression, names)

    points = rng.uniform(domain[:, 0], domain[:, 1], size=(n_samples, len(names)))
    inputs = dict(zip(names, points.T))
    u = f(**inputs)
    if not np.all(np.isfinite(u)):
        raise ValueError(f"expression {expression!r} is not finite everywhere on the domain "
                         f"{params['domain']!r}")

    coords = {"sample": sample_coordinate(n_samples)}
    for name in names:
        coords[name] = ("sample", *coordinate(inputs[name], VARIABLE_NAMES[name]))
    return xr.Dataset({"u": ("sample", u, {"long_name": f"u = {expression}", "units": "1"})},
                      coords=coords)
