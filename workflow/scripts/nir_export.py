"""Snakemake glue for the NIR export (see fwdsnn.hardware.nir_export)."""

from fwdsnn import logs
from fwdsnn.hardware.nir_export import export_nir

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
export_nir(snakemake.input[0], snakemake.output[0])  # noqa: F821
