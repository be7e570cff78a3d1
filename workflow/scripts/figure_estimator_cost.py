"""Snakemake glue for the estimator-cost figure (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.figures import plot_estimator_cost

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
ds = io.read_dataset(snakemake.input[0], stage="bench", variables=("step_time", "peak_memory"))  # noqa: F821
plot_estimator_cost(ds, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
