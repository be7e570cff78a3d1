"""Snakemake glue for the estimator-cost figure (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import BENCH
from fwdsnn.figures import plot_estimator_cost

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
ds = io.read_artifact(snakemake.input[0], BENCH)  # noqa: F821
plot_estimator_cost(ds, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
