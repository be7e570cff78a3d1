"""Snakemake glue for the energy and spike-rate figures (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import TABLE_FILES
from fwdsnn.figures import plot_energy, plot_spike_rates

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
out = snakemake.output  # noqa: F821
ds = io.read_artifact(snakemake.input[0], TABLE_FILES["energy"])  # noqa: F821
plot_energy(ds, out.energy_png, out.energy_pdf)
plot_spike_rates(ds, out.rates_png, out.rates_pdf)
