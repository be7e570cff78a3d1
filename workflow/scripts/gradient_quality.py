"""Snakemake glue for the gradient-quality diagnostics (see fwdsnn.diagnostics)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import DIAGNOSTICS
from fwdsnn.diagnostics import gradient_quality
from fwdsnn.reference import read_reference

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
params = snakemake.params  # noqa: F821
ds = gradient_quality(read_reference(snakemake.input[0]), params.model, params.settings)  # noqa: F821
io.write_dataset(ds, snakemake.output[0], stage=DIAGNOSTICS.stage,  # noqa: F821
                 config={"model": params.model, "diagnostics": params.settings},
                 seed=0, inputs=snakemake.input)  # noqa: F821
