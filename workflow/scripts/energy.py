"""Snakemake glue for the work and energy accounting (see fwdsnn.hardware.energy)."""

from fwdsnn import logs
from fwdsnn.hardware.energy import energy_run

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
energy_run(snakemake.input.model, snakemake.input.prediction, snakemake.output[0])  # noqa: F821
