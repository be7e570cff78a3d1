"""Snakemake glue for the accuracy bars (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.figures import plot_accuracy

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
ds = io.read_dataset(snakemake.input[0], stage="table_accuracy", variables=("rel_l2_mean",))  # noqa: F821
plot_accuracy(ds, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
