"""Snakemake glue for the accuracy bars (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import TABLE_FILES
from fwdsnn.figures import plot_accuracy

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
ds = io.read_artifact(snakemake.input[0], TABLE_FILES["accuracy"])  # noqa: F821
plot_accuracy(ds, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
