"""Snakemake glue for the gradient-quality figure (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import DIAGNOSTICS
from fwdsnn.figures import plot_gradient_quality

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
datasets = {name: io.read_artifact(path, DIAGNOSTICS)
            for name, path in zip(snakemake.params.names, snakemake.input)}  # noqa: F821
plot_gradient_quality(datasets, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
