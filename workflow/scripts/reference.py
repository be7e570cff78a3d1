"""Snakemake glue for the reference stage (see fwdsnn.reference)."""

from fwdsnn import logs
from fwdsnn.reference import write_reference

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
write_reference(snakemake.wildcards.target, snakemake.params.target, snakemake.output[0])  # noqa: F821
