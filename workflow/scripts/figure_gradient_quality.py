"""Snakemake glue for the gradient-quality figure (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.figures import plot_gradient_quality

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
datasets = {name: io.read_dataset(path, stage="diagnostics", variables=("cosine",))
            for name, path in zip(snakemake.params.names, snakemake.input)}  # noqa: F821
plot_gradient_quality(datasets, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
