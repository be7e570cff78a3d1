"""Reference solvers, one module per family, looked up by the family name used in config.yaml.

Each family module defines ``generate(params, n_samples, rng) -> xarray.Dataset`` (and may define
``check(params)``, raising :class:`ParameterError`): ``params`` is
the validated target entry (schema defaults filled in), ``rng`` is seeded from the target's
``seed``. The dataset holds float64 ``u`` (and ``a`` for operator targets) with real
coordinates and ``long_name``/``units`` on every variable; the reference stage adds the
train/test split and provenance. Adding a family: write the module, add one line to
``FAMILIES`` in ``fwdsnn/registry.py``, and describe its parameters in
``fwdsnn/schemas/config.schema.yaml``.
"""


class ParameterError(ValueError):
    """Target parameters that pass the schema but not the solver (e.g. an aliased grid).

    Raised by a family's ``check(params)``, which config validation calls before any job runs.
    """

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason
