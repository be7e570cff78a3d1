"""Snakemake glue for the gradient-quality diagnostics (see fwdsnn.diagnostics): the classes of
the job's methods are resolved here, in the registry, and handed to the stage."""

from fwdsnn import io, logs
from fwdsnn.artifacts import DIAGNOSTICS
from fwdsnn.diagnostics import gradient_quality
from fwdsnn.reference import read_reference
from fwdsnn.registry import estimator_class

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
params = snakemake.params  # noqa: F821
methods = dict(params.methods)
estimators = {name: estimator_class(m["method"]["estimator"]) for name, m in methods.items()}
ds = gradient_quality(read_reference(snakemake.input[0]), params.model, methods, estimators,  # noqa: F821
                      params.settings)
io.write_dataset(ds, snakemake.output[0], stage=DIAGNOSTICS.stage,  # noqa: F821
                 config={"model": params.model, "methods": methods, "diagnostics": params.settings},
                 seed=0, inputs=snakemake.input)  # noqa: F821
