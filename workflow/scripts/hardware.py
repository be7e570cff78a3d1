"""Snakemake glue for the hardware stage of one run (see fwdsnn.hardware.stage)."""

from fwdsnn import logs
from fwdsnn.hardware.stage import hardware_run

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
inputs, output, settings = snakemake.input, snakemake.output, snakemake.params.settings  # noqa: F821
hardware_run(inputs.model, inputs.prediction, inputs.reference, snakemake.params.bits,  # noqa: F821
             output.fixed, output.emulated, output.nir, output.energy,
             input_bits=settings["input_bits"], synaptic_delay=settings["synaptic_delay"])
