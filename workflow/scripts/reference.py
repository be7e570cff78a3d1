"""Snakemake glue for the reference stage (see fwdsnn.reference)."""

from fwdsnn import logs
from fwdsnn.reference import write_reference
from fwdsnn.registry import family_module

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
params = snakemake.params.target  # noqa: F821
write_reference(snakemake.wildcards.target, params, family_module(params["family"]), snakemake.output[0])  # noqa: F821
