"""Snakemake glue for the bit-sweep table and figure (see fwdsnn.hardware.sweep)."""

from fwdsnn import io, logs
from fwdsnn.figures import plot_bit_sweep
from fwdsnn.hardware.sweep import bit_sweep, median_table, write_tables
from fwdsnn.tables import read_metrics

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
runs, bits, inputs = snakemake.params.runs, snakemake.params.bits, snakemake.input  # noqa: F821
emulated = dict(zip([(run, b) for run in runs for b in bits], inputs.emulated))
ds = bit_sweep(runs, bits, read_metrics(runs, inputs.metrics), emulated)
out = snakemake.output  # noqa: F821
io.write_dataset(ds, out.table, stage="bit_sweep", config={"bits": bits}, inputs=inputs.metrics)
write_tables(median_table(ds), out.csv, out.markdown)
plot_bit_sweep(ds, out.png, out.pdf)
