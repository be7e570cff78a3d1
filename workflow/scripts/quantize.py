"""Snakemake glue for the fixed-point conversion and its emulation (see fwdsnn.hardware)."""

from fwdsnn import logs
from fwdsnn.hardware.convert import convert_run
from fwdsnn.hardware.emulator import emulate_run

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
settings = snakemake.params.settings  # noqa: F821
output = snakemake.output  # noqa: F821
for bits, fixed in zip(snakemake.params.bits, output.fixed):  # noqa: F821
    convert_run(snakemake.input.model, bits, fixed, input_bits=settings["input_bits"],  # noqa: F821
                synaptic_delay=settings["synaptic_delay"])
emulate_run(snakemake.input.model, list(zip(output.fixed, output.emulated)),  # noqa: F821
            snakemake.input.reference)  # noqa: F821
