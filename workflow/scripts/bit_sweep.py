"""Snakemake glue for the bit-sweep table and figure (see fwdsnn.hardware.sweep)."""

from fwdsnn import io, logs
from fwdsnn.figures import plot_bit_sweep
from fwdsnn.hardware.sweep import bit_sweep, median_table, write_tables

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
runs, bits, inputs = snakemake.params.runs, snakemake.params.bits, snakemake.input  # noqa: F821
emulated = dict(zip([(run, b) for run in runs for b in bits], inputs.emulated))
statuses = {run: io.read_dataset(path, stage="train").attrs["status"]
            for run, path in zip(runs, inputs.histories)}
ds = bit_sweep(runs, bits, dict(zip(runs, inputs.predictions)), emulated, statuses)
out = snakemake.output  # noqa: F821
io.write_dataset(ds, out.table, stage="bit_sweep", config={"bits": bits}, inputs=inputs.predictions)
write_tables(median_table(ds), out.csv, out.markdown)
plot_bit_sweep(ds, out.png, out.pdf)
