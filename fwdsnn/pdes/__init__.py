"""Reference solvers, one module per family, looked up by the family name used in config.yaml.

Each family module defines ``generate(params, n_samples, rng) -> xarray.Dataset`` (and may define
``check(params)``, raising :class:`ParameterError`): ``params`` is
the validated target entry (schema defaults filled in), ``rng`` is seeded from the target's
``seed``. The dataset holds float64 ``u`` (and ``a`` for operator targets) with real
coordinates and ``long_name``/``units`` on every variable; the reference stage adds the
train/test split and provenance. Adding a family: write the module, add one line below, and
describe its parameters in ``fwdsnn/schemas/config.schema.yaml``.
"""

from importlib import import_module
from types import ModuleType


class ParameterError(ValueError):
    """Target parameters that pass the schema but not the solver (e.g. an aliased grid).

    Raised by a family's ``check(params)``, which config validation calls before any job runs.
    """

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason

FAMILY_MODULES = {
    "function": "fwdsnn.pdes.function",
    "antiderivative": "fwdsnn.pdes.antiderivative",
    "poisson1d": "fwdsnn.pdes.poisson1d",
    "heat1d": "fwdsnn.pdes.heat1d",
    "diffusion_reaction1d": "fwdsnn.pdes.diffusion_reaction1d",
    "advection1d": "fwdsnn.pdes.advection1d",
    "burgers1d": "fwdsnn.pdes.burgers1d",
}


def family_module(family: str) -> ModuleType:
    """The solver module of a family; a clear error for an unknown name."""
    try:
        return import_module(FAMILY_MODULES[family])
    except KeyError:
        known = ", ".join(sorted(FAMILY_MODULES))
        raise KeyError(f"unknown target family {family!r}; known families: {known}") from None
