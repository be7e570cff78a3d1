"""Snakemake glue for the reference-samples figure (see fwdsnn.figures)."""

from fwdsnn import logs
from fwdsnn.figures import plot_reference
from fwdsnn.reference import read_reference

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
datasets = {name: read_reference(path)
            for name, path in zip(snakemake.params.targets, snakemake.input)}  # noqa: F821
plot_reference(datasets, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
